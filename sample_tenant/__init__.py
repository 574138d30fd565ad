"""
A deterministic sample Entra ID tenant: sign-in and audit exports, scripted scenarios and incidents.

The generator writes the files an analyst exports from Log Analytics (both sign-in tables and
AuditLogs as JSON lines, a TravelRecords watchlist), one sample Sentinel incident per scenario, the
ground truth of every scenario (`scenarios.json`) and the app settings for that tenant
(`settings.json`). Run it with `python -m sample_tenant --out DIR`; see `sample_tenant.cli`.
"""
