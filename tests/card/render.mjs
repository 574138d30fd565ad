// Renders Adaptive Cards with the official JavaScript renderer (npm `adaptivecards`) in headless Chromium.
//
// Why: Teams cannot be reached from tests, and a card Teams rejects fails silently in production (no
// message, no buttons). The official renderer is the reference implementation of the schema: a card it
// parses and validates without events, and renders as intended, is a card whose structure Teams accepts.
// Markdown is processed with markdown-it, as the renderer does when it is present, so escaping is
// checked against a real CommonMark parser.
//
// stdin:  {"chromium": "/usr/bin/chromium", "outDir": "path", "cards": [{"name": "n", "card": {...}}]}
// stdout: {"renderer": "<adaptivecards version>", "blockedRequests": [...], "results": [{"name", "parseEvents",
//          "validationEvents", "console", "pageErrors", "links", "buttons", "text", "html", "screenshot"}]}
// Exit 0 when the rendering ran (whatever it found), 2 on bad input or a browser failure.

import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const require = createRequire(import.meta.url);
// Files are read from this folder's node_modules (npm ci), never fetched: the page has no network.
const modules = fileURLToPath(new URL("./node_modules/", import.meta.url));
const adaptiveCardsJs = join(modules, "adaptivecards/dist/adaptivecards.min.js");
const adaptiveCardsCss = join(modules, "adaptivecards/dist/adaptivecards.css");
const markdownItJs = join(modules, "markdown-it/dist/browser/markdown-it.umd.min.js");
const { version: rendererVersion } = require("adaptivecards/package.json");

function fail(message) {
  process.stderr.write(`render.mjs: ${message}\n`);
  process.exit(2);
}

let input;
try {
  input = JSON.parse(readFileSync(0, "utf8"));
} catch (error) {
  fail(`stdin is not JSON: ${error.message}`);
}
if (!Array.isArray(input.cards) || !input.outDir || !input.chromium) fail("need chromium, outDir and cards");
const outDir = resolve(input.outDir);
mkdirSync(outDir, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), "card-render-"));
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
  await page.setViewport({ width: 620, height: 800, deviceScaleFactor: 1 });
  // No network: the page is built from local files; anything else that tries to load is refused and reported.
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

  await page.setContent(
    '<!doctype html><html><head><meta charset="utf-8"></head>' +
      '<body style="margin:0;background:#f5f5f5;font-family:sans-serif">' +
      '<div id="card" style="width:600px;padding:10px;background:#fff"></div></body></html>',
  );
  await page.addStyleTag({ content: readFileSync(adaptiveCardsCss, "utf8") });
  await page.addScriptTag({ content: readFileSync(markdownItJs, "utf8") });
  await page.addScriptTag({ content: readFileSync(adaptiveCardsJs, "utf8") });

  for (const { name, card } of input.cards) {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) fail(`bad card name ${JSON.stringify(name)}`);
    consoleLines = [];
    pageErrors = [];
    const rendered = await page.evaluate((payload) => {
      const AC = window.AdaptiveCards;
      const host = document.getElementById("card");
      host.innerHTML = "";
      const adaptiveCard = new AC.AdaptiveCard();
      const context = new AC.SerializationContext();
      adaptiveCard.parse(payload, context);
      const describe = (event) => ({
        phase: AC.ValidationPhase[event.phase],
        event: AC.ValidationEvent[event.event],
        message: event.message,
      });
      const parseEvents = [];
      for (let i = 0; i < context.eventCount; i++) parseEvents.push(describe(context.getEventAt(i)));
      const validationEvents = adaptiveCard.validateProperties().validationEvents.map(describe);
      const element = adaptiveCard.render();
      if (element) host.appendChild(element);
      return {
        parseEvents,
        validationEvents,
        links: Array.from(host.querySelectorAll("a")).map((a) => ({ href: a.getAttribute("href"), text: a.textContent })),
        buttons: Array.from(host.querySelectorAll("button")).map((b) => b.textContent.trim()),
        text: host.innerText,
        html: host.innerHTML,
      };
    }, card);
    const screenshot = join(outDir, `${name}.png`);
    const handle = await page.$("#card");
    await handle.screenshot({ path: screenshot });
    results.push({ name, ...rendered, console: consoleLines, pageErrors, screenshot });
  }
} catch (error) {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
  fail(`browser failure: ${error.stack || error}`);
}
await browser.close();
rmSync(profile, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ renderer: rendererVersion, blockedRequests, results }));
