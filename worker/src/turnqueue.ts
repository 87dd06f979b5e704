/**
 * Runs one user's turns one after another.
 *
 * A Durable Object is single-threaded, but awaiting the model (non-storage I/O) reopens its input gate,
 * so without this two requests for the same user would both read the history, both wait for the model
 * and both write: one exchange lost, `messageCount` wrong (the seed's defect 6). `blockConcurrencyWhile`
 * would serialise too, but it blocks every request, reads of the history included, for as long as the
 * model takes, and Cloudflare calls holding it across I/O an anti-pattern.
 */

import { ApiError } from "./errors";

export class TurnQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  /** Turns started or waiting to start. */
  get depth(): number {
    return this.waiting;
  }

  /**
   * Waits for every earlier turn to finish, then returns the function that ends this one. The caller
   * must call it exactly once, whatever happens (calling it again does nothing). Refuses with 429
   * `rate_limited` when `limit` turns are already queued, so a flood cannot pile up without bound.
   */
  async acquire(limit: number): Promise<() => void> {
    if (this.waiting >= limit) {
      throw new ApiError(
        "rate_limited",
        "Too many messages are waiting for this user; try again shortly.",
        `${this.waiting} turns queued`,
        1,
      );
    }
    this.waiting++;
    let release!: () => void;
    const finished = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.tail;
    this.tail = previous.then(() => finished);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.waiting--;
      release();
    };
  }
}
