// Hash functions against the values recorded from twemproxy 0.5.0, plus span and hash_tag behaviour.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { HASHES, hashTagSpan, hashWithTag, isHashName, md5Digest } from "../core/hash/mod.ts";
import type { HashFn, Span } from "../core/hash/mod.ts";
import { keyBytes, loadHashVectors, loadKeys } from "./helpers/vectors.ts";

const vectors = loadHashVectors();
const keys = loadKeys();
const enc = (s: string) => new TextEncoder().encode(s);
const show = (key: Uint8Array) => JSON.stringify(new TextDecoder().decode(key.subarray(0, 40)));

/** The function names hashes.jsonl records, in its order (which is twemproxy's). */
const recordedNames = Object.keys(vectors[0].hash);

describe("HASHES", () => {
  it("lists exactly the twelve functions the vectors record, in twemproxy's order", () => {
    assert.deepEqual(Object.keys(HASHES), recordedNames);
    assert.equal(recordedNames.length, 12);
  });

  it("is frozen", () => {
    assert.ok(Object.isFrozen(HASHES));
  });

  it("isHashName() accepts every table name and rejects others, including inherited keys", () => {
    for (const name of recordedNames) assert.ok(isHashName(name), name);
    for (const name of ["fnv1a", "FNV1A_64", "", "toString", "constructor"]) assert.ok(!isHashName(name), name);
  });
});

describe("hash functions match twemproxy 0.5.0 on every recorded key", () => {
  for (const name of recordedNames) {
    it(`${name} gives the recorded hash for all ${vectors.length} keys`, () => {
      const fn: HashFn = HASHES[name as keyof typeof HASHES];
      let bad = 0;
      let firstBad = "";
      for (const v of vectors) {
        const key = keyBytes(v.key);
        assert.equal(key.length, v.len, `vector key length for ${JSON.stringify(v.key)}`);
        const got = fn(key, 0, key.length);
        if (got !== v.hash[name]) {
          bad++;
          if (firstBad === "") firstBad = `${show(key)}: got ${got}, want ${v.hash[name]}`;
        }
      }
      assert.equal(bad, 0, `${name}: ${bad} mismatches, first ${firstBad}`);
    });
  }
});

describe("hash functions read only the span they are given", () => {
  /** Surrounds `key` with filler that would change every hash if it were read. */
  function embed(key: Uint8Array, before: number, after: number): Uint8Array {
    const buf = new Uint8Array(before + key.length + after).fill(0xa5);
    buf.fill(0x7b, 0, Math.min(before, 2)); // "{" bytes nearby, too
    buf.set(key, before);
    return buf;
  }

  for (const name of recordedNames) {
    it(`${name} of a sub-span equals ${name} of a copy, for all 1000 keys`, () => {
      const fn: HashFn = HASHES[name as keyof typeof HASHES];
      keys.forEach((key, i) => {
        const before = i % 7;
        const after = 1 + (i % 5);
        const buf = embed(key, before, after);
        const want = fn(key.slice(), 0, key.length);
        assert.equal(fn(buf, before, before + key.length), want, `${name}, key #${i} ${show(key)}`);
        assert.ok(want >= 0 && want <= 0xffffffff && Number.isInteger(want), `${name} key #${i} gives a uint32`);
      });
    });
  }

  it("every function hashes an empty span to 0, as twemproxy routes an empty key", () => {
    const buf = enc("nonempty");
    for (const name of recordedNames) {
      assert.equal(HASHES[name as keyof typeof HASHES](buf, 3, 3), 0, name);
    }
  });
});

describe("md5Digest", () => {
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const reference = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

  it("matches node:crypto for every length from 0 to 200 bytes (all padding boundaries)", () => {
    const buf = new Uint8Array(200).map((_, i) => (i * 37 + 11) & 0xff);
    for (let len = 0; len <= 200; len++) {
      assert.equal(hex(md5Digest(buf, 0, len)), reference(buf.subarray(0, len)), `length ${len}`);
    }
  });

  it("matches node:crypto on all 1000 vector keys, read from inside a larger buffer", () => {
    keys.forEach((key, i) => {
      const buf = new Uint8Array(key.length + 9).fill(0xff);
      buf.set(key, 4);
      assert.equal(hex(md5Digest(buf, 4, 4 + key.length)), reference(key), `key #${i}`);
    });
  });

  it("gives the RFC 1321 test-suite digests", () => {
    assert.equal(hex(md5Digest(enc(""), 0, 0)), "d41d8cd98f00b204e9800998ecf8427e");
    assert.equal(hex(md5Digest(enc("abc"), 0, 3)), "900150983cd24fb0d6963f7d28e17f72");
    assert.equal(hex(md5Digest(enc("message digest"), 0, 14)), "f96b697d7cb7938d525a2f31aaf161d0");
  });
});

describe("hash_tag", () => {
  const tag = enc("{}");
  const span: Span = { start: -1, end: -1 };
  const spanOf = (key: string, t: Uint8Array | null = tag) => {
    const b = enc(key);
    const s = hashTagSpan(b, 0, b.length, t, span);
    return new TextDecoder().decode(b.subarray(s.start, s.end));
  };

  it("hashes user:{42}:name exactly as the recorded hash of 42, under every function", () => {
    const key = enc("user:{42}:name");
    const tagged = vectors.find((v) => v.key === "42");
    assert.ok(tagged, "hashes.jsonl records the key 42");
    for (const name of recordedNames) {
      const fn = HASHES[name as keyof typeof HASHES];
      assert.equal(hashWithTag(fn, key, 0, key.length, tag), tagged.hash[name], name);
    }
  });

  it("takes the bytes between the first opening brace and the first closing brace after it", () => {
    assert.equal(spanOf("user:{42}:name"), "42");
    assert.equal(spanOf("{{a}}"), "{a");
    assert.equal(spanOf("}{a}"), "a");
    assert.equal(spanOf("a{42}b{43}c"), "42");
  });

  it("hashes the whole key when the tag is empty or never closed", () => {
    for (const key of ["{}", "a{}b{c}", "{a", "}a{", "no tag", ""]) assert.equal(spanOf(key), key);
  });

  it("hashes the whole key when no tag is configured", () => {
    assert.equal(spanOf("user:{42}:name", null), "user:{42}:name");
  });

  it("does not look for a closing brace past the end of the span", () => {
    const buf = enc("xx{ab}");
    const s = hashTagSpan(buf, 0, 5, tag, span); // "xx{ab", the "}" is outside
    assert.deepEqual([s.start, s.end], [0, 5]);
  });
});
