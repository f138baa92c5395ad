// Prometheus metrics in the text exposition format (version 0.0.4), written by hand: counters and
// histograms the server updates, gauges read from the engine when /metrics is scraped.

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

function numberText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  readonly #values = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.#values.size === 0) lines.push(`${this.name} 0`);
    for (const [key, value] of this.#values) lines.push(`${this.name}${key} ${numberText(value)}`);
    return lines.join('\n');
  }
}

/** A value read when rendered: a gauge, or a counter kept elsewhere (the engine's totals). */
export class Sampled implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number | { labels: Labels; value: number }[],
    readonly type: 'gauge' | 'counter' = 'gauge',
  ) {}

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    const value = this.read();
    if (typeof value === 'number') lines.push(`${this.name} ${numberText(value)}`);
    else for (const s of value) lines.push(`${this.name}${labelText(s.labels)} ${numberText(s.value)}`);
    return lines.join('\n');
  }
}

export class Histogram implements Metric {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** `buckets`: upper bounds, ascending (+Inf is implied). */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.#counts = new Array(buckets.length).fill(0);
  }

  observe(value: number): void {
    // Buckets are cumulative when rendered; here each observation lands in its first bucket only.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) this.#counts[i]++;
    this.#sum += value;
    this.#count++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cumulative = 0;
    this.buckets.forEach((bound, i) => {
      cumulative += this.#counts[i];
      lines.push(`${this.name}_bucket{le="${numberText(bound)}"} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${this.name}_sum ${numberText(this.#sum)}`);
    lines.push(`${this.name}_count ${this.#count}`);
    return lines.join('\n');
  }
}

export class Registry {
  readonly #metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }

  render(): string {
    return this.#metrics.map((m) => m.render()).join('\n') + '\n';
  }
}

/** Latency buckets in seconds, from a fast GPU's few ms per token to a CPU's seconds per prefill. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];

/** What the server counts; the engine's gauges are added by app.ts, which knows the model. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = this.registry.add(
    new Counter('paralon_requests_total', 'HTTP requests answered, by route and status code.'),
  );
  readonly promptTokens = this.registry.add(new Counter('paralon_prompt_tokens_total', 'Prompt tokens of metered requests (generations and embeddings).'));
  readonly generationTokens = this.registry.add(new Counter('paralon_generation_tokens_total', 'Tokens generated.'));
  readonly finished = this.registry.add(
    new Counter('paralon_generations_finished_total', 'Generations ended, by finish reason (stop, length, cancelled, error).'),
  );
  readonly timeToFirstToken = this.registry.add(
    new Histogram('paralon_time_to_first_token_seconds', 'From the request to its first generated text.', LATENCY_BUCKETS),
  );
  readonly interTokenLatency = this.registry.add(
    new Histogram('paralon_inter_token_latency_seconds', 'Between consecutive text deltas of one generation.', LATENCY_BUCKETS),
  );
  readonly requestDuration = this.registry.add(
    new Histogram('paralon_request_duration_seconds', 'From the request to the end of its generation.', LATENCY_BUCKETS),
  );
}
