// The one number formatting of sftkit's human-readable output: counts with k/M/G (progress lines, the dashboard's
// runs table and inspector, CLI summaries) and durations. Pure, no Node imports: the dashboard's front end
// (src/ui/web, bundled for the browser) imports it too. Plot tick labels (decimals from the tick step) are
// src/report/plot.ts's formatTick and the dashboard charts' own.

/** 950 -> `950`, 1234 -> `1.23k`, 12345 -> `12.3k`, 2.5e6 -> `2.50M`, 3e9 -> `3.00G`; `--` when not finite. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '--';
  const a = Math.abs(n);
  if (a < 1000) return String(Math.round(n));
  if (a < 1e6) return `${(n / 1e3).toFixed(a < 1e4 ? 2 : 1)}k`;
  if (a < 1e9) return `${(n / 1e6).toFixed(2)}M`;
  return `${(n / 1e9).toFixed(2)}G`;
}

/** `59s`, `4m05s`, `2h03m`, `3d04h`; `--` when unknown (not finite or negative). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** Memory sizes in binary units: `512 B`, `12.4 KiB`, `310.5 MiB`, `4.21 GiB`; `--` when not finite. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '--';
  const a = Math.abs(n);
  if (a < 1024) return `${Math.round(n)} B`;
  if (a < 2 ** 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (a < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}
