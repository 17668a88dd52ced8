// The playground's loaded models: a few kept (least recently used evicted), one request at a time per model (a
// native model generates one batch at a time), every model disposed on shutdown once its request has ended.
import type { Model } from '../native/index.ts';
import type { TextTokenizer } from '../tokenize/index.ts';

export interface LoadedModel {
  dir: string;
  model: Model;
  tokenizer: TextTokenizer;
}

export type ModelLoader = (dir: string) => Promise<LoadedModel>;

interface Entry {
  loading: Promise<LoadedModel>;
  /** Resolves when the current holder releases the model (chain of holders). */
  tail: Promise<void>;
  holders: number;
  lastUsed: number;
  evicted: boolean;
  disposal?: Promise<void>;
}

export interface ModelLease extends LoadedModel {
  release(): void;
}

export class ModelCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loader: ModelLoader;
  private readonly max: number;
  private readonly evictedEntries = new Set<Entry>();
  private closed = false;
  private clock = 0;

  constructor(loader: ModelLoader, options: { max?: number } = {}) {
    this.loader = loader;
    this.max = Math.max(1, options.max ?? 2);
  }

  /** Loaded directories (realpaths), most recently used first. */
  get loaded(): string[] {
    return [...this.entries.entries()].sort((a, b) => b[1].lastUsed - a[1].lastUsed).map(([d]) => d);
  }

  /** Waits for exclusive use of the model in `dir` (loading it first when needed). Call release() when done. */
  async acquire(dir: string): Promise<ModelLease> {
    if (this.closed) throw new Error('the model cache is closed');
    let entry = this.entries.get(dir);
    if (!entry) {
      const loading = this.loader(dir);
      entry = { loading, tail: Promise.resolve(), holders: 0, lastUsed: 0, evicted: false };
      this.entries.set(dir, entry);
      loading.catch(() => {
        if (this.entries.get(dir) === entry) this.entries.delete(dir);
      });
      this.evictBeyondMax(dir);
    }
    entry.lastUsed = ++this.clock;
    entry.holders++;
    const previous = entry.tail;
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    entry.tail = previous.then(() => done);
    const e = entry;
    let loaded: LoadedModel;
    try {
      await previous;
      loaded = await e.loading;
    } catch (err) {
      e.holders--;
      release();
      throw err;
    }
    let released = false;
    return {
      ...loaded,
      release: () => {
        if (released) return;
        released = true;
        e.holders--;
        release();
        if (e.evicted && e.holders === 0) void this.disposeEntry(e);
      },
    };
  }

  /** Disposes every model after its current request ends. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values(), ...this.evictedEntries];
    this.entries.clear();
    await Promise.all(all.map((e) => this.disposeEntry(e)));
  }

  private evictBeyondMax(keep: string): void {
    const idle = [...this.entries.entries()].filter(([d]) => d !== keep).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (this.entries.size > this.max && idle.length > 0) {
      const [dir, e] = idle.shift()!;
      this.entries.delete(dir);
      e.evicted = true;
      this.evictedEntries.add(e);
      if (e.holders === 0) void this.disposeEntry(e);
    }
  }

  private disposeEntry(e: Entry): Promise<void> {
    e.evicted = true;
    e.disposal ??= (async () => {
      try {
        await e.tail;
        const m = await e.loading;
        await m.model.dispose();
      } catch {
        // A model that failed to load has nothing to dispose.
      } finally {
        this.evictedEntries.delete(e);
      }
    })();
    return e.disposal;
  }
}
