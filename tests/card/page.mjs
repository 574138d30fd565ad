// Renders HTML pages (the incident comment, the offline report) in headless Chromium at given widths.
//
// Why: the comment must fit Sentinel's 480 px comment pane and the report a phone and a desktop
// without scrolling sideways; only a real layout engine can say so. The page gets no network: every
// request other than the page itself is refused and reported, and scripts are disabled.
//
// stdin:  {"chromium": "/usr/bin/chromium", "outDir": "path", "pages": [{"name": "n", "html": "...", "widths": [480, 1200]}]}
// stdout: {"blockedRequests": [...], "results": [{"name", "width", "scrollWidth", "clientWidth", "text",
//          "links", "console", "pageErrors", "screenshot"}]}
// Exit 0 when the rendering ran (whatever it found), 2 on bad input or a browser failure.

import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import puppeteer from "puppeteer-core";

function fail(message) {
  process.stderr.write(`page.mjs: ${message}\n`);
  process.exit(2);
}

let input;
try {
  input = JSON.parse(readFileSync(0, "utf8"));
} catch (error) {
  fail(`stdin is not JSON: ${error.message}`);
}
if (!Array.isArray(input.pages) || !input.outDir || !input.chromium) fail("need chromium, outDir and pages");
const outDir = resolve(input.outDir);
mkdirSync(outDir, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), "page-render-"));
const browser = await puppeteer.launch({
  executablePath: input.chromium,
  headless: true,
  userDataDir: profile,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
  ],
});

const blockedRequests = [];
const results = [];
try {
  const page = await browser.newPage();
  await page.setJavaScriptEnabled(false);
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    const url = request.url();
    if (url.startsWith("data:") || url === "about:blank") return request.continue();
    blockedRequests.push(url);
    return request.abort();
  });
  let consoleLines = [];
  let pageErrors = [];
  page.on("console", (message) => {
    if (message.type() === "warning" || message.type() === "error") consoleLines.push(`${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => pageErrors.push(String(error)));

  for (const { name, html, widths } of input.pages) {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) fail(`bad page name ${JSON.stringify(name)}`);
    for (const width of widths) {
      consoleLines = [];
      pageErrors = [];
      await page.setViewport({ width, height: 900, deviceScaleFactor: 1 });
      await page.setContent(html, { waitUntil: "load" });
      // Scripts are off in the page, so the measuring runs from here (the DevTools protocol still evaluates).
      const measured = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
        text: document.body.innerText,
        links: Array.from(document.querySelectorAll("a")).map((a) => a.getAttribute("href")),
        scripts: document.querySelectorAll("script").length,
      }));
      const screenshot = join(outDir, `${name}-${width}.png`);
      await page.screenshot({ path: screenshot, fullPage: true });
      results.push({ name, width, ...measured, console: consoleLines, pageErrors, screenshot });
    }
  }
} catch (error) {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
  fail(`browser failure: ${error.stack || error}`);
}
await browser.close();
rmSync(profile, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ blockedRequests, results }));
