// The report room's door: loss and reward curves (SVG, PNG through resvg), the metrics listener that draws them, and
// the progress lines.
export * from './plot.ts';
export * from './progress.ts';
