// What a request asks the grammar engine to enforce: a tree of xgrammar structural-tag formats
// (https://xgrammar.mlc.ai, "structural tag"), plain data so it crosses to the worker threads and
// keys the compile cache. `json_schema` nodes are compiled without free whitespace (see worker.ts).

export type JsonSchema = boolean | Record<string, unknown>;

export type GrammarFormat =
  | { type: 'any_text' }
  | { type: 'const_string'; value: string }
  | { type: 'json_schema'; json_schema: JsonSchema }
  | { type: 'sequence'; elements: GrammarFormat[] }
  | { type: 'or'; elements: GrammarFormat[] }
  | TagFormat
  | { type: 'triggered_tags'; triggers: string[]; tags: TagFormat[]; at_least_one?: boolean; stop_after_first?: boolean }
  | { type: 'tags_with_separator'; tags: TagFormat[]; separator: string; at_least_one?: boolean; stop_after_first?: boolean };

export interface TagFormat {
  type: 'tag';
  begin: string;
  content: GrammarFormat;
  end: string;
}

/**
 * The cache key of a format: JSON with object keys sorted at every level, so two requests sending
 * the same schema with keys in another order share one compiled grammar.
 */
export function canonicalKey(format: GrammarFormat): string {
  return JSON.stringify(format, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}
