/**
 * Architecture guard: core/ stays runtime-neutral, and each runtime-specific dependency
 * (yaml, parseArgs, @hono/node-server, the Deno/Bun globals) lives in exactly one place.
 * Sources are parsed with the TypeScript parser, so comments, strings and property names
 * never trigger a false alarm.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const SOURCE_EXT = /\.(ts|mts|cts|tsx|js|mjs|cjs)$/;
const SKIP_DIRS = new Set(["node_modules", ".git", "dist", "tmp", "coverage"]);
const CORE_BANNED = ["Deno", "Bun", "Buffer", "process"];
const GLOBAL_OBJECTS = new Set(["globalThis", "window", "self", "global"]);
const NODE_BUILTINS = new Set(builtinModules);

/** One import of a module: where, and the specifier (null when computed at run time). */
interface ImportSite {
  spec: string | null;
  line: number;
  names: string[];
}

/** What the scanner found in one file. */
interface Scan {
  imports: ImportSite[];
  /** Banned global names referenced as identifiers, with line numbers. */
  globals: { name: string; line: number }[];
  /** Names used as `<binding>.name` where the binding is a namespace/default import (e.g. util.parseArgs). */
  memberUses: Set<string>;
}

/** Repo-relative paths of source files under dir (recursive, sorted). */
function listSources(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(`${ROOT}/${rel}`).sort()) {
      const path = rel === "" ? name : `${rel}/${name}`;
      if (statSync(`${ROOT}/${path}`).isDirectory()) {
        if (!SKIP_DIRS.has(name) && !name.startsWith(".")) walk(path);
      } else if (SOURCE_EXT.test(name)) out.push(path);
    }
  };
  walk(dir);
  return out;
}

function stringArg(node: ts.Node | undefined): string | null {
  if (node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node))) return node.text;
  return null;
}

/** Identifier positions that name a property or member, not a variable in scope. */
function isPropertyName(id: ts.Identifier): boolean {
  const p = id.parent;
  if (ts.isPropertyAccessExpression(p)) return p.name === id && !isGlobalObject(p.expression);
  if (ts.isQualifiedName(p)) return p.right === id;
  if (ts.isImportSpecifier(p) || ts.isExportSpecifier(p) || ts.isBindingElement(p)) return p.propertyName === id;
  const named = ts.isPropertyAssignment(p) || ts.isMethodDeclaration(p) || ts.isPropertyDeclaration(p) ||
    ts.isPropertySignature(p) || ts.isMethodSignature(p) || ts.isGetAccessorDeclaration(p) ||
    ts.isSetAccessorDeclaration(p) || ts.isEnumMember(p) || ts.isNamedTupleMember(p) || ts.isLabeledStatement(p);
  return named && (p as { name?: ts.Node }).name === id;
}

function isGlobalObject(expr: ts.Expression): boolean {
  return ts.isIdentifier(expr) && GLOBAL_OBJECTS.has(expr.text);
}

/** Parses one source text and collects its imports and references to the given global names. */
function scanSource(fileName: string, text: string, bannedGlobals: readonly string[]): Scan {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const scan: Scan = { imports: [], globals: [], memberUses: new Set() };
  const lineOf = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const addImport = (n: ts.Node, spec: string | null, names: string[] = []) =>
    scan.imports.push({ spec, line: lineOf(n), names });
  for (const ref of sf.typeReferenceDirectives) scan.imports.push({ spec: `types:${ref.fileName}`, line: 1, names: [] });
  for (const ref of sf.libReferenceDirectives) scan.imports.push({ spec: `lib:${ref.fileName}`, line: 1, names: [] });

  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const names: string[] = [];
      if (clause?.name) names.push("default");
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) {
        for (const el of bindings.elements) names.push((el.propertyName ?? el.name).text);
      } else if (bindings) names.push("*");
      addImport(node, stringArg(node.moduleSpecifier), names);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      addImport(node, stringArg(node.moduleSpecifier), ["*"]);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      addImport(node, stringArg(node.moduleReference.expression), ["*"]);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      addImport(node, stringArg(node.argument.literal), ["*"]);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const dynamic = callee.kind === ts.SyntaxKind.ImportKeyword;
      if (dynamic || (ts.isIdentifier(callee) && callee.text === "require")) {
        addImport(node, stringArg(node.arguments[0]), ["*"]);
      }
    } else if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
      scan.memberUses.add(node.name.text);
    } else if (ts.isElementAccessExpression(node) && isGlobalObject(node.expression)) {
      const key = stringArg(node.argumentExpression);
      if (key !== null && bannedGlobals.includes(key)) scan.globals.push({ name: key, line: lineOf(node) });
    } else if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.InKeyword) {
      const key = stringArg(node.left); // `"Deno" in globalThis` is detection too
      if (key !== null && bannedGlobals.includes(key) && isGlobalObject(node.right)) {
        scan.globals.push({ name: key, line: lineOf(node) });
      }
    }
    if (ts.isIdentifier(node) && bannedGlobals.includes(node.text) && !isPropertyName(node)) {
      scan.globals.push({ name: node.text, line: lineOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return scan;
}

/** True for specifiers that tie code to one runtime: node builtins, bun, URL schemes, type directives. */
function isRuntimeSpecifier(spec: string | null): boolean {
  if (spec === null) return true; // computed import: cannot prove it is neutral
  if (spec.startsWith("types:")) return /^types:(node|bun|bun-types|@types\/bun|deno)/.test(spec);
  if (spec.startsWith("lib:")) return /^lib:deno/.test(spec);
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) return true; // node:, bun:, jsr:, npm:, https:
  return spec === "bun" || NODE_BUILTINS.has(spec) || NODE_BUILTINS.has(spec.split("/")[0]);
}

const importsModule = (scan: Scan, pred: (spec: string) => boolean) =>
  scan.imports.some((i) => i.spec !== null && pred(i.spec));

/** True when the file takes parseArgs from node:util (named import, or util.parseArgs). */
function importsParseArgs(scan: Scan): boolean {
  const fromUtil = scan.imports.filter((i) => i.spec === "node:util" || i.spec === "util");
  return fromUtil.some((i) => i.names.includes("parseArgs")) ||
    (fromUtil.some((i) => i.names.includes("*") || i.names.includes("default")) && scan.memberUses.has("parseArgs"));
}

/** Repo-relative path that a relative specifier in file `from` points at. */
function resolveRelative(from: string, spec: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const seg of spec.split("/")) {
    if (seg === "..") parts.pop();
    else if (seg !== ".") parts.push(seg);
  }
  return parts.join("/");
}

function scanFile(path: string, banned: readonly string[]): Scan {
  return scanSource(path, readFileSync(`${ROOT}/${path}`, "utf8"), banned);
}

/** Repo sources the single-owner rules apply to: everything but tests (tests may use any tool). */
function productionSources(): string[] {
  return listSources("").filter((p) => !p.startsWith("tests/"));
}

function filesWhere(pred: (scan: Scan) => boolean, banned: readonly string[] = []): string[] {
  return productionSources().filter((p) => pred(scanFile(p, banned)));
}

describe("the purity scanner itself", () => {
  it("finds node: imports in every import form", () => {
    const src = [
      `import net from "node:net";`,
      `import type { Socket } from "node:net";`,
      `export { x } from "node:fs";`,
      `const a = await import("node:os");`,
      `const b = require("node:path");`,
      `type T = import("node:stream").Readable;`,
      `import c = require("node:dns");`,
      `import "fs";`,
    ].join("\n");
    const found = scanSource("x.ts", src, []).imports.filter((i) => isRuntimeSpecifier(i.spec));
    assert.deepEqual(found.map((i) => i.line), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("ignores node: and runtime names inside comments, strings and templates", () => {
    const src = [
      `// import net from "node:net"; process.exit(); Deno.listen()`,
      `/* require("node:fs") Buffer.from("x") Bun.serve */`,
      `const s = "import x from 'node:os' process Buffer";`,
      "const t = `Deno ${1} Bun process`;",
      `const re = /process|Buffer/;`,
    ].join("\n");
    const scan = scanSource("x.ts", src, CORE_BANNED);
    assert.deepEqual(scan.imports, []);
    assert.deepEqual(scan.globals, []);
  });

  it("ignores property names but flags real and globalThis references", () => {
    const src = [
      `const o = { process: 1, Buffer() {} };`,
      `o.process; class K { process(x: number) { return x; } Deno = 1; }`,
      `interface I { Bun: string; process(): void }`,
      `const { process: p } = o;`,
      `process.exit(1);`,
      `const b: Buffer = Buffer.alloc(1);`,
      `globalThis.Deno; globalThis["Bun"];`,
      `const isBun = "Bun" in globalThis; const k = "process" in o;`,
    ].join("\n");
    const scan = scanSource("x.ts", src, CORE_BANNED);
    const found = scan.globals.map((g) => `${g.line}:${g.name}`);
    assert.deepEqual(found, ["5:process", "6:Buffer", "6:Buffer", "7:Deno", "7:Bun", "8:Bun"]);
  });

  it("treats npm packages and relative paths as neutral and builtins, bun and URL schemes as runtime", () => {
    const neutral = ["yaml", "hono", "./net.ts", "../core/bytes.ts", "@hono/node-server"];
    const runtime = ["node:net", "fs", "fs/promises", "bun", "bun:test", "jsr:@std/assert", "https://x.y/z.ts", null];
    assert.deepEqual(neutral.filter(isRuntimeSpecifier), []);
    assert.deepEqual(runtime.filter((s) => !isRuntimeSpecifier(s)), []);
  });

  it("resolves relative specifiers against the importing file", () => {
    assert.equal(resolveRelative("core/redis/parse.ts", "../bytes.ts"), "core/bytes.ts");
    assert.equal(resolveRelative("core/net.ts", "../adapters/node.ts"), "adapters/node.ts");
    assert.equal(resolveRelative("core/net.ts", "./hash/mod.ts"), "core/hash/mod.ts");
  });

  it("recognises parseArgs taken from node:util by name or through the namespace", () => {
    const named = scanSource("a.ts", `import { parseArgs } from "node:util";`, []);
    const viaNs = scanSource("b.ts", `import util from "node:util"; util.parseArgs({});`, []);
    const other = scanSource("c.ts", `import { inspect } from "node:util"; inspect(1);`, []);
    assert.deepEqual([named, viaNs, other].map(importsParseArgs), [true, true, false]);
  });
});

describe("runtime purity of the repository", () => {
  it("core/ imports no runtime module (node:, bun, builtins, URL schemes)", () => {
    const files = listSources("core");
    assert.ok(files.length > 0, "core/ has source files");
    const bad = files.flatMap((p) =>
      scanFile(p, []).imports.filter((i) => isRuntimeSpecifier(i.spec)).map((i) => `${p}:${i.line} ${i.spec ?? "(computed import)"}`)
    );
    assert.deepEqual(bad, []);
  });

  it("core/ imports nothing by relative path from outside core/", () => {
    const bad = listSources("core").flatMap((p) =>
      scanFile(p, []).imports
        .filter((i) => i.spec !== null && i.spec.startsWith(".") && !resolveRelative(p, i.spec).startsWith("core/"))
        .map((i) => `${p}:${i.line} ${i.spec}`)
    );
    assert.deepEqual(bad, []);
  });

  it("core/ never references Deno, Bun, Buffer or process", () => {
    const bad = listSources("core").flatMap((p) =>
      scanFile(p, CORE_BANNED).globals.map((g) => `${p}:${g.line} ${g.name}`)
    );
    assert.deepEqual(bad, []);
  });

  it("exactly one module, core/conf/yaml.ts, imports yaml", () => {
    const users = filesWhere((s) => importsModule(s, (m) => m === "yaml" || m.startsWith("yaml/")));
    assert.deepEqual(users, ["core/conf/yaml.ts"]);
  });

  it("exactly one module, adapters/flags.ts, imports parseArgs from node:util", () => {
    const users = filesWhere(importsParseArgs);
    assert.deepEqual(users, ["adapters/flags.ts"]);
  });

  it("only adapters/node.ts imports @hono/node-server", () => {
    const users = filesWhere((s) => importsModule(s, (m) => m === "@hono/node-server" || m.startsWith("@hono/node-server/")));
    assert.deepEqual(users.filter((p) => p !== "adapters/node.ts"), []);
  });

  it("only adapters/mod.ts, deno.ts and bun.ts reference the Deno or Bun globals", () => {
    const allowed = new Set(["adapters/mod.ts", "adapters/deno.ts", "adapters/bun.ts"]);
    const users = filesWhere((s) => s.globals.length > 0, ["Deno", "Bun"]);
    assert.deepEqual(users.filter((p) => !allowed.has(p)), []);
  });
});
