/**
 * The deployment files in contrib/ parse and use flags and paths that exist: the systemd
 * unit (ExecStart, ExecStartPre -t, ExecReload's signal, PIDFile, the directories it opens;
 * `systemd-analyze verify` when installed) and the Kubernetes sidecar (the container's args,
 * the ConfigMap's nutcracker.yml as a valid config at the path the args read, the token from
 * its Secret mount, readiness on /health and liveness on /live of the admin port). Each is then
 * run for real with the CLI on this runtime (paths and ports moved to temporary ones): the
 * unit's start, reload and stop; the sidecar's probes, its token, and --watch picking up a
 * ConfigMap update made the way the kubelet makes it (an atomic swap of the `..data` symlink).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import YAML from "yaml";
import { parseFlags } from "../adapters/flags.ts";
import { loadConf } from "../core/conf/mod.ts";
import { kill, killStarted, runCli, startCli, waitUntil } from "./helpers/cli.ts";
import { freePort } from "./helpers/ports.ts";
import { ROOT, runtimeName } from "./helpers/runtime.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

const UNIT = `${ROOT}/contrib/systemd/twemproxy-ts.service`;
const K8S = `${ROOT}/contrib/k8s`;

/** A unit file as section -> key -> values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header !== null) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(current !== null && eq > 0, `a key=value line in a section: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

/** The one value of `key` in `section`. */
function one(unit: Map<string, Map<string, string[]>>, section: string, key: string): string {
  const values = unit.get(section)?.get(key) ?? [];
  assert.equal(values.length, 1, `${section}.${key}`);
  return values[0];
}

/** Replace every `from` in argv by `to` (whole arguments and address suffixes). */
function moved(argv: readonly string[], map: Readonly<Record<string, string>>): string[] {
  return argv.map((a) => map[a] ?? a);
}

async function status(url: string): Promise<number> {
  return await fetch(url).then((r) => r.status, () => 0);
}

async function generation(admin: string): Promise<number> {
  return (await (await fetch(`${admin}/reload`)).json() as { generation: number }).generation;
}

const poolYaml = (name: string, port: number, redis: number) =>
  `${name}:\n  listen: 127.0.0.1:${port}\n  redis: true\n  servers:\n    - 127.0.0.1:${redis}:1\n`;

describe("the systemd unit and the Kubernetes sidecar in contrib/", () => {
  let tmp = "";
  let redis: ServerProcess;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-contrib-"));
    redis = await startRedis();
  });

  after(async () => {
    killStarted();
    await redis?.stop();
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("the unit starts the binary with flags the CLI accepts, checks the config first, reloads by SIGUSR1 and writes its PID file where systemd looks", () => {
    const unit = parseUnit(fs.readFileSync(UNIT, "utf8"));
    assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
    const [bin, ...args] = one(unit, "Service", "ExecStart").split(/\s+/);
    assert.equal(bin, "/usr/local/bin/nutcracker");
    const start = parseFlags(args);
    assert.ok(start.ok, start.ok ? "" : start.error);
    const [preBin, ...preArgs] = one(unit, "Service", "ExecStartPre").split(/\s+/);
    const pre = parseFlags(preArgs);
    assert.ok(pre.ok && pre.flags.testConf, "ExecStartPre runs -t");
    assert.equal(preBin, bin);
    assert.equal(pre.flags.confFile, start.flags.confFile);
    assert.ok(start.flags.admin !== null && start.flags.admin.startsWith("127.0.0.1:"), "the admin API on loopback");
    assert.equal(start.flags.pidFile, one(unit, "Service", "PIDFile"));
    assert.equal(path.dirname(start.flags.pidFile!), `/run/${one(unit, "Service", "RuntimeDirectory")}`, "the PID file in the RuntimeDirectory");
    assert.ok(start.flags.confFile.startsWith(`${one(unit, "Service", "ReadOnlyPaths")}/`), "the config under ReadOnlyPaths");
    assert.equal(one(unit, "Service", "ExecReload"), "/bin/kill -USR1 $MAINPID");
    assert.equal(one(unit, "Service", "KillSignal"), "SIGTERM");
    assert.equal(one(unit, "Service", "Restart"), "on-failure");
    assert.equal(one(unit, "Install", "WantedBy"), "multi-user.target");
  });

  const noAnalyze = fs.existsSync("/usr/bin/systemd-analyze") ? false : "systemd-analyze is not installed";
  it("the unit passes systemd-analyze verify (when installed)", { skip: noAnalyze }, async () => {
    // verify wants the binaries to exist: point them at this runtime's executable.
    const copy = path.join(tmp, "twemproxy-ts.service");
    fs.writeFileSync(copy, fs.readFileSync(UNIT, "utf8").replaceAll("/usr/local/bin/nutcracker", process.execPath));
    const out = await new Promise<{ code: number; text: string }>((resolve) => {
      execFile("/usr/bin/systemd-analyze", ["verify", copy], { timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, text: `${stdout}${stderr}` });
      });
    });
    const problems = out.text.split("\n").filter((l) => l.includes(copy));
    assert.deepEqual(problems, [], out.text);
    assert.equal(out.code, 0, out.text);
  });

  it("the unit's command runs: -t checks the config, the PID file is written, its reload applies a changed file, SIGTERM stops it cleanly", async () => {
    const unit = parseUnit(fs.readFileSync(UNIT, "utf8"));
    const [, ...args] = one(unit, "Service", "ExecStart").split(/\s+/);
    const flags = parseFlags(args);
    assert.ok(flags.ok);
    const [alpha, beta, stats, admin] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const conf = path.join(tmp, "unit.yml");
    const pid = path.join(tmp, "unit.pid");
    fs.writeFileSync(conf, poolYaml("alpha", alpha, redis.port));
    const argv = moved(args, {
      [flags.flags.confFile]: conf, [flags.flags.pidFile!]: pid, [String(flags.flags.statsPort)]: String(stats),
      [flags.flags.admin!]: `127.0.0.1:${admin}`,
    });
    const [, ...preArgs] = one(unit, "Service", "ExecStartPre").split(/\s+/);
    assert.equal((await runCli(moved(preArgs, { [flags.flags.confFile]: conf }))).code, 0, "-t accepts a valid file");
    fs.writeFileSync(path.join(tmp, "broken.yml"), "alpha:\n  listen: nowhere\n");
    assert.notEqual((await runCli(moved(preArgs, { [flags.flags.confFile]: path.join(tmp, "broken.yml") }))).code, 0, "-t refuses a broken one");

    const child = startCli(argv);
    const base = `http://127.0.0.1:${admin}`;
    await waitUntil(async () => (await status(`${base}/live`)) === 200, "the admin API", 30_000);
    await waitUntil(() => fs.existsSync(pid) && fs.readFileSync(pid, "utf8").trim() === String(child.pid), "the PID file");
    fs.writeFileSync(conf, poolYaml("alpha", alpha, redis.port) + poolYaml("beta", beta, redis.port));
    if (runtimeName() === "deno") {
      // SIGUSR1 must never reach Deno (V8 inspector): the unit's comment gives the admin API instead.
      const res = await fetch(`${base}/reload`, { method: "POST", headers: { "content-type": "application/json" } });
      assert.equal(res.status, 200);
    } else {
      kill(child.pid, "SIGUSR1");
    }
    await waitUntil(async () => (await generation(base)) === 2, "the reload");
    kill(child.pid, "SIGTERM");
    const done = await child.done;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(fs.existsSync(pid), false, "the PID file is removed at exit");
  });

  it("the sidecar's args, ConfigMap, Secret mount and probes fit together", () => {
    const [deployment] = YAML.parseAllDocuments(fs.readFileSync(`${K8S}/deployment.yaml`, "utf8")).map((d) => d.toJS());
    const [configMap] = YAML.parseAllDocuments(fs.readFileSync(`${K8S}/configmap.yaml`, "utf8")).map((d) => d.toJS());
    assert.deepEqual([deployment.apiVersion, deployment.kind], ["apps/v1", "Deployment"]);
    assert.deepEqual([configMap.apiVersion, configMap.kind], ["v1", "ConfigMap"]);
    const spec = deployment.spec.template.spec;
    assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
    const proxy = spec.containers.find((c: { name: string }) => c.name === "twemproxy-ts");
    const app = spec.containers.find((c: { name: string }) => c.name !== "twemproxy-ts");
    assert.deepEqual(proxy.command, ["/usr/local/bin/nutcracker"]);
    const parsed = parseFlags(proxy.args);
    assert.ok(parsed.ok, parsed.ok ? "" : parsed.error);
    const flags = parsed.flags;
    assert.ok(flags.watch, "--watch: ConfigMap updates reload");

    const mountOf = (file: string) => proxy.volumeMounts.find((m: { mountPath: string }) => path.dirname(file) === m.mountPath);
    const volumeOf = (name: string) => spec.volumes.find((v: { name: string }) => v.name === name);
    const confMount = mountOf(flags.confFile);
    assert.ok(confMount !== undefined, `a volume is mounted where -c reads ${flags.confFile}`);
    assert.equal(volumeOf(confMount.name).configMap.name, configMap.metadata.name);
    const key = path.basename(flags.confFile);
    assert.ok(key in configMap.data, `the ConfigMap has ${key}`);
    const conf = loadConf(configMap.data[key], key);
    assert.ok(conf.pools.length > 0);
    const listen = conf.pools[0].listen;
    assert.ok(listen.kind === "tcp" && listen.host === "127.0.0.1", "the pool listens on the pod's loopback");
    const url = app.env.find((e: { name: string }) => e.name === "REDIS_URL").value;
    assert.equal(url, `redis://127.0.0.1:${listen.port}`, "the app talks to the pool");

    assert.ok(flags.adminToken !== null, "--admin-token: the admin API listens beyond loopback");
    const tokenMount = mountOf(flags.adminToken);
    assert.ok(tokenMount !== undefined, `a volume is mounted where --admin-token reads ${flags.adminToken}`);
    assert.ok(volumeOf(tokenMount.name).secret.secretName.length > 0);

    const adminPort = Number(flags.admin!.split(":").at(-1));
    const port = proxy.ports.find((p: { name: string }) => p.name === "admin");
    assert.equal(port.containerPort, adminPort);
    assert.deepEqual(proxy.readinessProbe.httpGet, { path: "/health", port: "admin" });
    assert.deepEqual(proxy.livenessProbe.httpGet, { path: "/live", port: "admin" });
    const scrape = deployment.spec.template.metadata.annotations;
    assert.deepEqual([scrape["prometheus.io/port"], scrape["prometheus.io/path"]], [String(adminPort), "/metrics"]);
  });

  it("the sidecar's command runs: probes answer, POST needs the token, and a kubelet-style ConfigMap update is reloaded by --watch", async () => {
    const [deployment] = YAML.parseAllDocuments(fs.readFileSync(`${K8S}/deployment.yaml`, "utf8")).map((d) => d.toJS());
    const proxy = deployment.spec.template.spec.containers.find((c: { name: string }) => c.name === "twemproxy-ts");
    const parsed = parseFlags(proxy.args);
    assert.ok(parsed.ok);
    const flags = parsed.flags;
    // The kubelet's layout: nutcracker.yml -> ..data/nutcracker.yml, ..data -> a timestamped directory.
    const mount = path.join(tmp, "configmap");
    const version = (n: number, text: string) => {
      const dir = path.join(mount, `..2026_01_01_00_00_0${n}.000000000`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, "nutcracker.yml"), text);
      return path.basename(dir);
    };
    const [alpha, beta, stats, admin] = [await freePort(), await freePort(), await freePort(), await freePort()];
    fs.mkdirSync(mount);
    fs.symlinkSync(version(1, poolYaml("alpha", alpha, redis.port)), path.join(mount, "..data"));
    fs.symlinkSync("..data/nutcracker.yml", path.join(mount, "nutcracker.yml"));
    const token = path.join(tmp, "token");
    fs.writeFileSync(token, "sidecar-token-9d2e\n");
    const child = startCli(moved(proxy.args, {
      [flags.confFile]: path.join(mount, "nutcracker.yml"), [flags.adminToken!]: token, [String(flags.statsPort)]: String(stats),
      [flags.admin!]: `127.0.0.1:${admin}`,
    }));
    const base = `http://127.0.0.1:${admin}`;
    await waitUntil(async () => (await status(`${base}${proxy.livenessProbe.httpGet.path}`)) === 200, "liveness", 30_000);
    assert.equal(await status(`${base}${proxy.readinessProbe.httpGet.path}`), 200, "readiness with its backend up");
    const post = await fetch(`${base}/reload`, { method: "POST", headers: { "content-type": "application/json" } });
    assert.equal(post.status, 401, "the token is in force");

    const next = version(2, poolYaml("alpha", alpha, redis.port) + poolYaml("beta", beta, redis.port));
    fs.symlinkSync(next, path.join(mount, "..data_tmp"));
    fs.renameSync(path.join(mount, "..data_tmp"), path.join(mount, "..data"));
    await waitUntil(async () => (await generation(base)) === 2, "--watch to reload the swapped ConfigMap", 10_000);
    const pools = await (await fetch(`${base}/pools`)).json() as Record<string, unknown>;
    assert.deepEqual(Object.keys(pools), ["alpha", "beta"]);
    kill(child.pid, "SIGTERM");
    assert.equal((await child.done).code, 0);
  });
});
