// Async native calls keep a stack that points at the caller: the stack is captured before the call is
// queued and grafted onto the native error, whose message and `code` are kept.
export async function withCallerStack<T>(run: () => Promise<T>): Promise<T> {
  const site = new Error('caller');
  try {
    return await run();
  } catch (e) {
    if (e instanceof Error && site.stack) {
      const frames = site.stack.split('\n').slice(1).join('\n');
      e.stack = `${e.name}: ${e.message}\n${frames}`;
    }
    throw e;
  }
}

/** Runs native operations one at a time (one operation in flight per model). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const next = this.tail.then(op, op);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
