// Loss plots: the SVG is well-formed XML with one polyline per series and the right point counts; the PNG (resvg's
// rendering of that SVG) has a valid signature, chunks with correct CRCs, the figure's size, the series' colour along
// the curve, and text (title, axis labels) where the SVG has it when a font is available.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { crc32, inflateSync } from 'node:zlib';
import type { MetricRecord } from '../../../src/report/metrics.ts';
import {
  buildLossFigure,
  decimate,
  formatTick,
  lossSeries,
  hasPlotFont,
  niceScale,
  renderPng,
  renderSvg,
  writeLossPlots,
  type Point,
} from '../../../src/report/plot.ts';

const dir = mkdtempSync(join(tmpdir(), 'sftkit-plot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** A strict little XML parser for what renderSvg emits: throws on mismatched tags, bad attributes or raw & / <. */
function parseXml(xml: string): XmlElement {
  let i = 0;
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack = [root];
  const checkText = (t: string) => {
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(t)) throw new Error(`bad entity in ${JSON.stringify(t)}`);
  };
  if (xml.startsWith('<?xml')) i = xml.indexOf('?>') + 2;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = lt < 0 ? xml.slice(i) : xml.slice(i, lt);
    checkText(text);
    stack[stack.length - 1]!.text += text;
    if (lt < 0) break;
    const gt = xml.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const open = stack.pop()!;
      if (open.name !== tag.slice(1)) throw new Error(`</${tag.slice(1)}> closes <${open.name}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*$/.exec(body);
    if (!m) throw new Error(`malformed tag <${tag}>`);
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      checkText(a[2]!);
      attrs[a[1]!] = a[2]!;
    }
    const el: XmlElement = { name: m[1]!, attrs, children: [], text: '' };
    stack[stack.length - 1]!.children.push(el);
    if (!selfClosing) stack.push(el);
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error('not exactly one root element');
  return root.children[0]!;
}

function all(el: XmlElement, name: string): XmlElement[] {
  return [...(el.name === name ? [el] : []), ...el.children.flatMap((c) => all(c, name))];
}

/** A small PNG decoder (8-bit RGB or RGBA, no interlace, all five filters): RGB pixels out, alpha over white. */
function decodePng(buf: Buffer): { width: number; height: number; pixels: Buffer; chunks: string[] } {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  let off = 8;
  const chunks: string[] = [];
  const idat: Buffer[] = [];
  let width = 0;
  let height = 0;
  let channels = 0;
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    assert.equal(buf.readUInt32BE(off + 8 + len), crc32(buf.subarray(off + 4, off + 8 + len)), `CRC of ${type}`);
    chunks.push(type);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, '8-bit');
      assert.ok(data[9] === 2 || data[9] === 6, `RGB or RGBA, not colour type ${data[9]}`);
      assert.deepEqual([...data.subarray(10)], [0, 0, 0], 'no interlace');
      channels = data[9] === 6 ? 4 : 3;
    }
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  assert.equal(chunks[0], 'IHDR');
  assert.equal(chunks[chunks.length - 1], 'IEND');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  assert.equal(raw.length, (stride + 1) * height);
  const img = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= channels ? img[y * stride + x - channels]! : 0;
      const b = y > 0 ? img[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? img[(y - 1) * stride + x - channels]! : 0;
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][filter];
      assert.ok(pred !== undefined, `filter ${filter}`);
      img[y * stride + x] = (v + pred) & 255;
    }
  }
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const alpha = channels === 4 ? img[i * 4 + 3]! / 255 : 1;
    for (let k = 0; k < 3; k++) pixels[i * 3 + k] = Math.round(img[i * channels + k]! * alpha + 255 * (1 - alpha));
  }
  return { width, height, pixels, chunks };
}

function run(steps: number, valEvery: number): MetricRecord[] {
  const recs: MetricRecord[] = [];
  for (let s = 1; s <= steps; s++) {
    recs.push({ type: 'train', step: s, tokensSeen: s * 100, loss: 3 / Math.sqrt(s) });
    if (s % valEvery === 0) recs.push({ type: 'val', step: s, tokensSeen: s * 100, loss: 3.2 / Math.sqrt(s) });
  }
  return recs;
}

test('series: non-finite losses and missing x are dropped, sorted by x', () => {
  const recs: MetricRecord[] = [
    { type: 'train', step: 2, tokensSeen: 20, loss: 1 },
    { type: 'train', step: 1, loss: 2 },
    { type: 'train', step: 3, tokensSeen: 30, loss: null },
    { type: 'val', step: 2, tokensSeen: 20, loss: Number.NaN },
    { type: 'event', step: 3, message: 'x' },
  ];
  assert.deepEqual(lossSeries(recs, 'step'), { train: [{ x: 1, y: 2 }, { x: 2, y: 1 }], val: [] });
  assert.deepEqual(lossSeries(recs, 'tokensSeen').train, [{ x: 20, y: 1 }]);
});

test('SVG: well-formed, two panels, one polyline per series with one point per record', () => {
  const svg = renderSvg(buildLossFigure(run(40, 10)));
  const doc = parseXml(svg);
  assert.equal(doc.name, 'svg');
  assert.equal(doc.attrs.width, '1200');
  const lines = all(doc, 'polyline');
  assert.deepEqual(lines.map((l) => l.attrs['data-series']), ['train', 'validation', 'train', 'validation']);
  const counts = lines.map((l) => l.attrs.points!.trim().split(/\s+/).length);
  assert.deepEqual(counts, [40, 4, 40, 4]);
  for (const l of lines) for (const p of l.attrs.points!.split(/\s+/)) assert.match(p, /^-?\d+(\.\d+)?,-?\d+(\.\d+)?$/);
  assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'));
  const texts = all(doc, 'text').map((t) => t.text);
  for (const label of ['Loss vs optimizer steps', 'Loss vs tokens seen', 'optimizer step', 'tokens seen', 'loss', 'train', 'validation', '4k', '40']) {
    assert.ok(texts.includes(label), `label ${label} in ${texts.join('|')}`);
  }
});

test('SVG: a single point, no points and thousands of points stay finite and bounded', () => {
  const one = parseXml(renderSvg(buildLossFigure([{ type: 'train', step: 1, tokensSeen: 512, loss: 2 }])));
  assert.deepEqual(all(one, 'polyline').map((l) => l.attrs.points!.split(' ').length), [1, 1]);
  assert.equal(all(one, 'circle').length, 2, 'a lone point gets a marker');
  const none = renderSvg(buildLossFigure([]));
  assert.equal(all(parseXml(none), 'polyline').length, 0);
  assert.ok(!none.includes('NaN'));
  const big = renderSvg(buildLossFigure(run(20000, 500)));
  assert.ok(!big.includes('NaN'));
  const lines = all(parseXml(big), 'polyline');
  const train = lines[0]!.attrs.points!.split(' ');
  assert.ok(train.length <= 1000 && train.length > 200, `decimated to ${train.length}`);
  assert.equal(lines[1]!.attrs.points!.split(' ').length, 40);
  assert.ok(big.length < 200_000, `SVG size ${big.length}`);
});

test('decimation keeps the ends and the spikes, in order', () => {
  const pts: Point[] = Array.from({ length: 10000 }, (_, i) => ({ x: i, y: i === 5123 ? 100 : i === 777 ? -5 : Math.sin(i) }));
  const d = decimate(pts, 400);
  assert.ok(d.length <= 400);
  assert.deepEqual(d[0], pts[0]);
  assert.deepEqual(d[d.length - 1], pts[9999]);
  assert.ok(d.some((p) => p.y === 100) && d.some((p) => p.y === -5));
  for (let i = 1; i < d.length; i++) assert.ok(d[i]!.x > d[i - 1]!.x);
  assert.equal(decimate(pts.slice(0, 10), 400).length, 10);
});

test('nice ticks and tick labels', () => {
  assert.deepEqual(niceScale(0.83, 4.2), { lo: 0.5, hi: 4.5, step: 0.5, ticks: [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5] });
  const s = niceScale(1, 3000, 5, true, true);
  assert.equal(s.hi, 3000);
  assert.deepEqual(s.ticks, [0, 500, 1000, 1500, 2000, 2500, 3000]);
  assert.deepEqual(niceScale(1, 1, 5, false, true).ticks, [0, 1, 2]);
  assert.equal(formatTick(0.30000000000000004, 0.1), '0.3');
  assert.equal(formatTick(1500000, 500000, true), '1.5M');
  assert.equal(formatTick(500, 500, true), '500');
  assert.equal(formatTick(0, 500000, true), '0');
  assert.equal(formatTick(2000, 1000, true), '2k');
  assert.equal(formatTick(-0.00001, 0.5), '0.0');
});

test('PNG: valid chunks, figure size, and the series colours along the curves', () => {
  const scene = buildLossFigure(run(30, 10), { width: 800, height: 300 });
  const png = decodePng(renderPng(scene));
  assert.equal(png.width, 800);
  assert.equal(png.height, 300);
  const at = (x: number, y: number) => [...png.pixels.subarray((Math.floor(y) * png.width + Math.floor(x)) * 3, (Math.floor(y) * png.width + Math.floor(x)) * 3 + 3)];
  const isBlueish = (p: number[]) => p[2]! > p[0]! + 60;
  const isOrangeish = (p: number[]) => p[0]! > p[2]! + 100;
  for (const item of scene.items) {
    if (item.kind !== 'polyline') continue;
    for (let i = 1; i < item.points.length; i++) {
      const a = item.points[i - 1]!;
      const b = item.points[i]!;
      const mid = at((a.x + b.x) / 2, (a.y + b.y) / 2);
      assert.ok(item.series === 'train' ? isBlueish(mid) : isOrangeish(mid), `${item.series} colour at segment ${i}: ${mid}`);
    }
  }
  // background stays white away from everything (top-left corner), text is dark
  assert.deepEqual(at(2, 2), [255, 255, 255]);
  let dark = 0;
  for (let i = 0; i < png.pixels.length; i += 3) if (png.pixels[i]! < 80 && png.pixels[i + 1]! < 80 && png.pixels[i + 2]! < 80) dark++;
  assert.ok(dark > 1000, `dark pixels (axes, labels): ${dark}`);
});

/** Pixels darker than light grey (text, axes; not the grid) inside a box. */
function inkIn(png: { width: number; pixels: Buffer }, box: { x0: number; y0: number; x1: number; y1: number }): number {
  let n = 0;
  for (let y = Math.max(0, Math.floor(box.y0)); y < Math.ceil(box.y1); y++) {
    for (let x = Math.max(0, Math.floor(box.x0)); x < Math.ceil(box.x1); x++) {
      const i = (y * png.width + x) * 3;
      if (png.pixels[i]! < 160 && png.pixels[i + 1]! < 160 && png.pixels[i + 2]! < 160) n++;
    }
  }
  return n;
}

test('PNG: the title and axis labels are drawn as text where the SVG has them (with a font)', (t) => {
  const scene = buildLossFigure(run(30, 10));
  const png = decodePng(renderPng(scene));
  assert.equal(png.width, 1200);
  assert.equal(png.height, 450);
  const labels = scene.items.filter((i) => i.kind === 'text' && ['Loss vs optimizer steps', 'Loss vs tokens seen', 'optimizer step', 'tokens seen'].includes(i.text));
  assert.equal(labels.length, 4);
  // the same figure without a font: no text at all, the curves and axes still there
  const bare = decodePng(renderPng(scene, { font: { loadSystemFonts: false }, log: () => {} }));
  assert.equal(bare.width, 1200);
  assert.equal(bare.height, 450);
  for (const l of labels) {
    if (l.kind !== 'text') continue;
    const half = (l.text.length * l.size * 0.6) / 2;
    const box = { x0: l.x - half, y0: l.y - l.size / 2, x1: l.x + half, y1: l.y + l.size / 2 };
    assert.equal(inkIn(bare, box), 0, `no text without a font at "${l.text}"`);
  }
  assert.ok(inkIn(bare, { x0: 0, y0: 0, x1: 1200, y1: 450 }) > 1000, 'axes and curves without a font');
  if (!hasPlotFont()) {
    t.skip('no font on this machine');
    return;
  }
  for (const l of labels) {
    if (l.kind !== 'text') continue;
    const half = (l.text.length * l.size * 0.6) / 2;
    const box = { x0: l.x - half, y0: l.y - l.size / 2, x1: l.x + half, y1: l.y + l.size / 2 };
    assert.ok(inkIn(png, box) > l.text.length * 3, `text pixels at "${l.text}": ${inkIn(png, box)}`);
  }
  // the vertical "loss" label on the left of each panel
  const ylabel = scene.items.find((i) => i.kind === 'text' && i.vertical);
  assert.ok(ylabel && ylabel.kind === 'text');
  assert.ok(inkIn(png, { x0: ylabel.x - 8, y0: ylabel.y - 20, x1: ylabel.x + 8, y1: ylabel.y + 20 }) > 10, 'vertical axis label');
  assert.equal(inkIn(bare, { x0: ylabel.x - 8, y0: ylabel.y - 20, x1: ylabel.x + 8, y1: ylabel.y + 20 }), 0);
});

test('PNG without any font: rendered all the same, the missing font said once', () => {
  const notes: string[] = [];
  const scene = buildLossFigure(run(5, 5), { width: 400, height: 200 });
  const a = decodePng(renderPng(scene, { font: { loadSystemFonts: false }, log: (m) => notes.push(m) }));
  decodePng(renderPng(scene, { font: { loadSystemFonts: false }, log: (m) => notes.push(m) }));
  assert.equal(a.width, 400);
  assert.ok(notes.length <= 1, notes.join('\n'));
  if (notes.length === 1) assert.match(notes[0]!, /no font.*SFTKIT_PLOT_FONT/);
});

test('writeLossPlots writes loss.svg and loss.png into the output directory', async () => {
  const paths = await writeLossPlots(run(12, 4), dir);
  assert.deepEqual(paths, { svg: join(dir, 'loss.svg'), png: join(dir, 'loss.png') });
  parseXml(readFileSync(paths.svg, 'utf8'));
  const png = decodePng(readFileSync(paths.png));
  assert.equal(png.width, 1200);
  assert.equal(png.height, 450);
});
