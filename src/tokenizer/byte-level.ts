// The GPT-2 byte-level alphabet used by byte-level BPE vocabularies (GPT-2, Llama 3, Qwen): every byte
// 0..255 is drawn as one printable code point, so vocabulary strings never hold raw control or
// partial-UTF-8 bytes. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves;
// the other 68 bytes take the code points 256, 257, ... in byte order (space 0x20 → 'Ġ' U+0120,
// '\n' 0x0A → 'Ċ' U+010A).

function buildByteToCodePoint(): Uint16Array {
  const table = new Uint16Array(256);
  const standsForItself = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = standsForItself(b) ? b : next++;
  return table;
}

const BYTE_TO_CODE_POINT = buildByteToCodePoint();

/** Code point of the alphabet → the byte it stands for (-1: not in the alphabet). Indexed up to 0x143. */
const CODE_POINT_TO_BYTE = (() => {
  const table = new Int16Array(256 + 68).fill(-1);
  for (let b = 0; b < 256; b++) table[BYTE_TO_CODE_POINT[b]] = b;
  return table;
})();

/**
 * Writes the raw bytes a vocabulary string stands for at out[offset ..] (one byte per character) and
 * returns true; returns false when the string holds a character outside the byte-level alphabet, i.e.
 * it is literal text (as the HF ByteLevel decoder treats such tokens) — out is then partly written.
 */
export function writeByteLevelBytes(token: string, out: Uint8Array, offset: number): boolean {
  for (let i = 0; i < token.length; i++) {
    const cp = token.charCodeAt(i);
    const b = cp < CODE_POINT_TO_BYTE.length ? CODE_POINT_TO_BYTE[cp] : -1;
    if (b < 0) return false;
    out[offset + i] = b;
  }
  return true;
}
