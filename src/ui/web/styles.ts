// The dashboard's stylesheet (injected by main.ts next to uPlot's).
export const STYLES = `
:root {
  --bg: #f6f7f9; --card: #fff; --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --accent: #2563eb;
  --trained: #d1fadf; --trained-fg: #05603a; --masked-fg: #8c959f; --bad: #b42318; --ok: #067647; --warn: #b54708;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg);
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --card: #161b22; --fg: #e6edf3; --muted: #8d96a0; --line: #30363d; --accent: #4493f8;
    --trained: #12361f; --trained-fg: #7ee2a8; --masked-fg: #6e7681; --bad: #f85149; --ok: #3fb950; --warn: #d29922; }
  .u-legend, .uplot { color: var(--fg); }
}
.u-legend th, .u-legend td { border: none; padding: 1px 4px; text-transform: none; letter-spacing: 0; font-size: 12px; color: inherit; font-weight: 500; }
* { box-sizing: border-box; }
body { margin: 0; }
header.top { display: flex; align-items: center; gap: 24px; padding: 10px 20px; background: var(--card); border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 5; }
header.top h1 { font-size: 17px; margin: 0; letter-spacing: .02em; }
nav.tabs { display: flex; gap: 4px; }
nav.tabs a { padding: 6px 12px; border-radius: 6px; color: var(--muted); text-decoration: none; }
nav.tabs a.active { background: var(--bg); color: var(--fg); font-weight: 600; }
main { padding: 16px 20px 40px; max-width: 1500px; margin: 0 auto; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 14px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.runs tr.selected td { background: color-mix(in srgb, var(--accent) 7%, transparent); }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-left: 6px; vertical-align: middle; }
.status { padding: 1px 8px; border-radius: 10px; font-size: 12px; border: 1px solid var(--line); white-space: nowrap; }
.status-running { color: var(--accent); border-color: var(--accent); }
.status-running::before { content: "● "; animation: pulse 1.4s infinite; }
.status-finished { color: var(--ok); border-color: var(--ok); }
.status-failed, .status-stale { color: var(--bad); border-color: var(--bad); }
.status-interrupted { color: var(--warn); border-color: var(--warn); }
@keyframes pulse { 50% { opacity: .3; } }
.controls { display: flex; gap: 20px; align-items: center; margin: 6px 0 10px; flex-wrap: wrap; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
figure.chart { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px; position: relative; min-width: 0; }
figure.chart figcaption { font-weight: 600; margin: 0 0 4px 4px; }
.chart-empty { position: absolute; inset: 40px 0 0 0; display: grid; place-items: center; color: var(--muted); pointer-events: none; }
.chart-empty[hidden] { display: none; }
.run-detail h2 { margin: 18px 0 2px; font-size: 16px; }
.detail-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; }
table.kv th { text-transform: none; font-size: 13px; width: 40%; }
.path { color: var(--muted); font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.message { color: var(--muted); }
.message.error, .error { color: var(--bad); }
.message.warning { color: var(--warn); }
.hint { color: var(--muted); font-size: 12px; }
pre.json { font-size: 12px; background: var(--bg); padding: 8px; border-radius: 6px; overflow: auto; }
ul.events { padding-left: 18px; margin: 0; }
.form-grid { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: flex-end; }
.field { display: flex; flex-direction: column; gap: 2px; }
.field.inline { flex-direction: row; align-items: center; gap: 6px; }
.field-label { font-size: 12px; color: var(--muted); }
input, select, textarea, button { font: inherit; color: inherit; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 5px 8px; }
input.path { width: 420px; max-width: 80vw; font-family: ui-monospace, monospace; font-size: 13px; }
input.short { width: 90px; }
button { cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button:disabled { opacity: .5; cursor: default; }
.summary { display: flex; flex-direction: column; gap: 2px; margin: 6px 0; }
.counts b { font-variant-numeric: tabular-nums; }
.pager { display: flex; gap: 12px; align-items: center; margin: 6px 0 10px; }
.legend .tok { padding: 0 4px; }
.example header { color: var(--muted); font-size: 12px; margin-bottom: 6px; }
.example.dropped { opacity: .75; border-style: dashed; }
pre.tokens { white-space: pre-wrap; word-break: break-word; margin: 0; font: 13px/1.6 ui-monospace, SFMono-Regular, Menlo, monospace; }
.tok.trained, .seg.trained { background: var(--trained); color: var(--trained-fg); border-radius: 2px; }
.tok.masked, .seg.masked { color: var(--masked-fg); }
.tok:hover { outline: 1px solid var(--accent); }
.tooltip { position: absolute; z-index: 10; background: var(--fg); color: var(--bg); padding: 3px 8px; border-radius: 4px; font: 12px ui-monospace, monospace; pointer-events: none; max-width: 60ch; white-space: pre-wrap; }
.tooltip[hidden] { display: none; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 14px; }
.column[hidden] { display: none; }
.transcript { min-height: 200px; max-height: 55vh; overflow: auto; display: flex; flex-direction: column; gap: 8px; margin: 8px 0; }
.msg { padding: 8px 10px; border-radius: 8px; white-space: pre-wrap; max-width: 92%; }
.msg.user { align-self: flex-end; background: color-mix(in srgb, var(--accent) 14%, transparent); }
.msg.assistant { align-self: flex-start; background: var(--bg); border: 1px solid var(--line); }
.msg.streaming::after { content: "▍"; animation: pulse 1s infinite; }
.composer textarea { width: 100%; resize: vertical; }
.row { display: flex; gap: 8px; margin-top: 6px; }
.histogram { display: grid; grid-template-columns: repeat(10, 1fr); gap: 6px; margin: 8px 0 14px; align-items: end; }
.histogram[hidden] { display: none; }
.histogram .bar { padding: 0; border: none; background: transparent; display: flex; flex-direction: column; justify-content: flex-end; align-items: stretch; gap: 2px; }
.histogram .fill { background: var(--accent); border-radius: 3px 3px 0 0; min-height: 1px; opacity: .75; }
.histogram .bar:hover .fill, .histogram .bar.active .fill { opacity: 1; }
.histogram .bar.active .range { color: var(--fg); font-weight: 600; }
.histogram .count, .histogram .range { font-size: 11px; color: var(--muted); text-align: center; }
table.responses td { font-size: 13px; max-width: 40ch; white-space: pre-wrap; }
td.score { font-weight: 600; color: color-mix(in srgb, var(--ok) calc(var(--score, 50) * 1%), var(--bad)); }
td.score.na { color: var(--muted); font-weight: 400; }
th.sortable { cursor: pointer; }
.view[hidden] { display: none; }
`;
