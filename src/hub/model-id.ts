// Hub model ids as people type them: `Qwen/Qwen3-8B`, or `Qwen/Qwen3-8B-GGUF:Q4_K_M` where the tag
// after the colon picks the GGUF file by its quantization (as llama.cpp's `-hf` does).

export interface HubModelId {
  /** owner/name */
  repo: string;
  /** The GGUF quantization tag, e.g. Q4_K_M; undefined picks the default file. */
  quant?: string;
}

// The hub's repo names: letters, digits, '-', '_', '.'; an owner and a name.
const HUB_ID = /^([A-Za-z0-9][\w.-]*)\/([A-Za-z0-9][\w.-]*)(?::([\w.-]+))?$/;

/** The id and tag of `spec`, or null when it is not shaped like a hub id. */
export function parseHubId(spec: string): HubModelId | null {
  const m = HUB_ID.exec(spec);
  if (m === null || spec.includes('--') || spec.includes('..')) return null;
  return { repo: `${m[1]}/${m[2]}`, quant: m[3] };
}

/** `repo` or `repo:QUANT`. */
export function formatHubId(id: HubModelId): string {
  return id.quant === undefined ? id.repo : `${id.repo}:${id.quant}`;
}
