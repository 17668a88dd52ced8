// The report room's door: what a run tells people and tools about itself, fed by the training loop's metric events:
// metrics.jsonl (writer, reader, the record and event types), loss and reward curves (SVG, PNG through resvg, drawn by
// a metrics listener) and the progress lines. It depends on nothing but src/shared; the loop and the dashboard read
// from here.
export * from './metrics.ts';
export * from './plot.ts';
export * from './progress.ts';
