/** Lookup tables shared by the CRC hashes, computed once at load instead of pasted in. */

/** CRC-16/XMODEM table (polynomial 0x1021, MSB first), as used by twemproxy's crc16. */
export const CRC16_TABLE: Uint16Array = buildCrc16Table();

/**
 * Reflected CRC-32 table (polynomial 0xedb88320), shared by crc32 and crc32a. Signed
 * entries keep the inner loop in small-integer arithmetic (unsigned ones above 2^31 are
 * doubles to the engine, several times slower).
 */
export const CRC32_TABLE: Int32Array = buildCrc32Table();

function buildCrc16Table(): Uint16Array {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    }
    table[i] = crc & 0xffff;
  }
  return table;
}

function buildCrc32Table(): Int32Array {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
    }
    table[i] = crc;
  }
  return table;
}
