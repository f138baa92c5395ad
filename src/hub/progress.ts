// Download and load progress for people: on a terminal one redrawn line with a bar, bytes, rate and
// ETA; elsewhere (logs, CI) a plain line every few seconds and at the end.

export interface ProgressOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Seconds between plain lines when the stream is not a terminal. */
  lineIntervalS?: number;
  now?: () => number;
}

export interface ProgressBar {
  /** Sets the bytes done so far (of `total`). */
  update(done: number, total: number): void;
  /** Draws the final state and ends the line. */
  finish(): void;
}

/** A progress display labelled `label` ("downloading Qwen/Qwen3-0.6B", "loading weights"). */
export function createProgressBar(label: string, options: ProgressOptions): ProgressBar {
  const now = options.now ?? (() => performance.now());
  const start = now();
  const tty = options.stream.isTTY === true;
  const interval = (options.lineIntervalS ?? 5) * 1000;
  // A terminal shows the bar at once; a log gets its first line after one interval (a fast job: only the last).
  let lastDraw = tty ? -Infinity : start;
  let done = 0;
  let total = 0;
  let finished = false;

  const line = (final: boolean): string => {
    const seconds = Math.max((now() - start) / 1000, 1e-3);
    const rate = done / seconds;
    const parts = [`${label}`, `${formatBytes(done)} / ${formatBytes(total)}`, `${formatBytes(rate)}/s`];
    if (!final && rate > 0 && total > done) parts.push(`ETA ${formatDuration((total - done) / rate)}`);
    if (final) parts.push(`in ${formatDuration(seconds)}`);
    const fraction = total > 0 ? Math.min(done / total, 1) : 1;
    if (!tty) return `${parts[0]}: ${(fraction * 100).toFixed(0)}% (${parts.slice(1).join(', ')})`;
    const width = Math.max(10, Math.min(30, (options.stream.columns ?? 80) - 70));
    const filled = Math.round(fraction * width);
    return `${parts[0]} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${parts.slice(1).join('  ')}`;
  };

  return {
    update(d, t) {
      done = d;
      total = t;
      const at = now();
      if (tty ? at - lastDraw < 100 : at - lastDraw < interval) return;
      lastDraw = at;
      options.stream.write(tty ? `\r\x1b[2K${line(false)}` : `${line(false)}\n`);
    },
    finish() {
      if (finished) return;
      finished = true;
      options.stream.write(tty ? `\r\x1b[2K${line(true)}\n` : `${line(true)}\n`);
    },
  };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value.toFixed(0)} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
