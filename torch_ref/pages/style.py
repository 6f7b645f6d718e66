"""The report's one stylesheet, inlined in every page (no font or file is fetched). System fonts; a
single column that reads at a phone's width (figures scroll inside their own box, never the page)
and at 1280 px; text colours of contrast 7:1 or more against their backgrounds."""

CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a1a1a;background:#fff}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2em 0 .4em}
h2{font-size:1.2rem;margin:1.6em 0 .5em;border-bottom:1px solid #ccc;padding-bottom:.2em}
h3{font-size:1rem;margin:1em 0 .3em}
code,pre{font:14px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f4f4f4;border:1px solid #ddd;padding:10px;overflow-x:auto;white-space:pre}
.verdict{border-left:8px solid;padding:8px 14px;margin:8px 0 16px;background:#f7f7f7}
.verdict.fail{border-color:#8c2d04}
.verdict.pass{border-color:#08519c}
.verdict.unjudged{border-color:#555}
.badge{display:inline-block;font-weight:700;padding:1px 8px;border:2px solid;border-radius:4px;margin-right:8px}
.fail .badge{color:#8c2d04}
.pass .badge{color:#08519c}
.unjudged .badge{color:#333}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.beyond td{background:#fdebdd}
.arrays{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:0}
figure.array{border:1px solid #ddd;padding:8px;max-width:100%}
figure.array .scroll{max-height:520px;overflow:auto}
figcaption{font-size:14px;margin-top:4px}
svg text{font-family:system-ui,sans-serif}
svg.diagram{width:100%;max-width:504px;height:auto}
svg.scale{width:100%;max-width:444px;height:auto}
svg.chart{width:100%;max-width:460px;height:auto}
.diagram .node rect{fill:#fff;stroke:#555;stroke-width:1.2}
.diagram .io rect{fill:#f0f0f0;stroke:#888;stroke-dasharray:4 3}
.diagram .marked rect{stroke:#000;stroke-width:3.5}
.diagram .marked rect.hatched{stroke:none}
.diagram .diagnosed rect:first-child{stroke:#000;stroke-width:2.5;stroke-dasharray:7 4}
.diagram .marked.diagnosed rect:first-child{stroke-width:3.5}
.diagram .group.diagnosed{stroke:#000;stroke-width:2.5;stroke-dasharray:7 4}
.diagram .node-label{font-size:12px;fill:#111}
.diagram .node-detail{font-size:11px;fill:#333}
.diagram .mark{font-size:13px;font-weight:700;fill:#000}
.diagram .flow{stroke:#555;stroke-width:1.2}
.diagram .group{fill:none;stroke:#666;stroke-dasharray:6 4}
.diagram .skip{fill:none;stroke:#666;stroke-width:1.5}
.diagram .join{fill:#fff;stroke:#666;stroke-width:1.5}
.diagram .join-plus{font-size:13px;font-weight:700;fill:#333}
.hatch-bg{fill:#fdd0a2}
.hatch-line{stroke:#8c2d04;stroke-width:3}
.hatch-on-cell{stroke:#fff;stroke-width:1.6;stroke-opacity:.85}
.heatmap .cell{stroke:#fff;stroke-width:.5}
.heatmap .hatched,.heatmap .cross,.heatmap .worst{pointer-events:none}
.heatmap .worst,.scale .worst{fill:none;stroke:#000;stroke-width:2.5}
.cross{stroke:#333;stroke-width:1}
.scale .bound,.chart .bound{stroke:#000;stroke-width:2}
.tick,.axis,.bound-label{font-size:12px;fill:#222}
.chart .grid{stroke:#e3e3e3}
.chart .series{fill:none;stroke:#08519c;stroke-width:2}
.chart .dot{fill:#08519c}
.chart .dot.beyond{fill:#8c2d04}
.chart .bound-series{stroke:#555;stroke-dasharray:5 4;stroke-width:1.5}
.chart .dot-bound{fill:#fff;stroke:#333;stroke-width:1.5}
.chart .mark{font-size:12px;font-weight:700;fill:#000}
.formula{margin:6px 0 14px 0;padding:6px 12px;border-left:3px solid #999;overflow-x:auto}
.formula math{font-size:1.15em}
.muted{color:#444}
button.copy{font:inherit;font-size:14px;padding:4px 12px;border:1px solid #444;border-radius:4px;background:#fff;color:#111;cursor:pointer}
button.copy:focus{outline:3px solid #08519c;outline-offset:2px}
.barbox{display:inline-block;width:160px;height:14px;border:1px solid #888;margin-right:8px;vertical-align:middle;position:relative}
.barbox .bar{position:absolute;left:0;top:0;bottom:0;background:#6baed6;border-right:2px solid #08519c}
ul.tight{margin:.2em 0;padding-left:1.3em}
nav.toc{font-size:14px}
nav.toc a{margin-right:12px}
section.run{border-top:3px solid #ddd;margin-top:28px}
@media (max-width:600px){main{padding:10px}h1{font-size:1.25rem}dl.facts{grid-template-columns:1fr}dl.facts dt{margin-top:6px}}
"""
