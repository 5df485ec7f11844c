/**
 * The nutcracker command line: flag parsing in-process, then the real CLI (mod.ts)
 * started as a child process on the runtime running the tests: -V/-h/-D/-t output and
 * exit codes as nutcracker 0.5.0 (nc.c), pid file, log file, signals and -d.
 * Every process started here is killed by PID in `after`, and every wait is bounded.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { FLAG_DEFAULTS, parseFlags, usage } from "../adapters/flags.ts";
import type { Flags } from "../adapters/flags.ts";
import { kill, killStarted, read, runCli, startCli, track, untrack, waitUntil } from "./helpers/cli.ts";
import { canConnect, freePort, sleep, waitForPort } from "./helpers/ports.ts";

let tmp = "";

/** A config with one redis pool on `port`; the backend is never contacted. */
function writeConf(name: string, port: number): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `alpha:\n  listen: 127.0.0.1:${port}\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n`);
  return file;
}

/** Start the proxy in the foreground with a log file and a pid file; wait until it listens. */
async function startProxy(tag: string, extra: string[] = []) {
  const port = await freePort();
  const conf = writeConf(`${tag}.yml`, port);
  const log = path.join(tmp, `${tag}.log`);
  const pidFile = path.join(tmp, `${tag}.pid`);
  // A free stats port too: the default 22222 may be taken by another test's proxy.
  const statsPort = String(await freePort());
  const child = startCli(["-c", conf, "-o", log, "-p", pidFile, "-s", statsPort, ...extra]);
  await waitForPort(port, 30_000);
  return { child, port, log, pidFile };
}

/** Everything a TCP server sends before it closes (the stats port's JSON). */
function readAll(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    socket.setEncoding("utf8");
    socket.setTimeout(10_000, () => socket.destroy(new Error("stats port timed out")));
    socket.on("data", (chunk) => text += chunk);
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

function ok(result: ReturnType<typeof parseFlags>): Flags {
  assert.ok(result.ok, result.ok ? "" : result.error);
  return result.flags;
}

function error(result: ReturnType<typeof parseFlags>): string {
  assert.ok(!result.ok, "expected a flag error");
  return result.error;
}

describe("parseFlags", () => {
  it("defaults to nutcracker 0.5.0's values", () => {
    const f = ok(parseFlags([]));
    assert.deepEqual(f, {
      help: false, version: false, testConf: false, daemonize: false, describeStats: false,
      verbose: 5, output: null, confFile: "conf/nutcracker.yml", statsPort: 22222, statsAddr: "0.0.0.0",
      statsInterval: 30000, pidFile: null, mbufSize: 16384, admin: null, adminToken: null, watch: false,
      workers: null, drainTimeout: 30000,
    });
  });

  it("reads the same values from the short and the long form of every flag", () => {
    const short = ok(parseFlags(["-h", "-V", "-t", "-d", "-D", "-v", "7", "-o", "a.log", "-c", "b.yml",
      "-s", "3000", "-a", "127.0.0.1", "-i", "1000", "-p", "c.pid", "-m", "1024"]));
    const long = ok(parseFlags(["--help", "--version", "--test-conf", "--daemonize", "--describe-stats",
      "--verbose=7", "--output=a.log", "--conf-file=b.yml", "--stats-port=3000", "--stats-addr=127.0.0.1",
      "--stats-interval=1000", "--pid-file=c.pid", "--mbuf-size=1024"]));
    assert.deepEqual(short, long);
    assert.deepEqual(
      [short.help, short.version, short.testConf, short.daemonize, short.describeStats, short.verbose, short.output,
        short.confFile, short.statsPort, short.statsAddr, short.statsInterval, short.pidFile, short.mbufSize],
      [true, true, true, true, true, 7, "a.log", "b.yml", 3000, "127.0.0.1", 1000, "c.pid", 1024],
    );
  });

  it("accepts grouped short flags and attached values", () => {
    const f = ok(parseFlags(["-tv3", "-cconf/demo.yml"]));
    assert.deepEqual([f.testConf, f.verbose, f.confFile], [true, 3, "conf/demo.yml"]);
  });

  it("carries --admin and --verbosity", () => {
    const f = ok(parseFlags(["--admin", "127.0.0.1:8080", "--verbosity=2"]));
    assert.deepEqual([f.admin, f.verbose], ["127.0.0.1:8080", 2]);
  });

  it("carries --admin-token FILE and --watch; --admin-token without a file is an error", () => {
    const f = ok(parseFlags(["--admin-token", "/etc/nutcracker/token", "--watch"]));
    assert.deepEqual([f.adminToken, f.watch], ["/etc/nutcracker/token", true]);
    assert.equal(ok(parseFlags(["--admin-token=t.txt"])).adminToken, "t.txt");
    assert.equal(error(parseFlags(["--admin-token"])), "nutcracker: option --admin-token requires a file name");
    assert.equal(error(parseFlags(["--admin-token="])), "nutcracker: option --admin-token requires a file name");
  });

  it("rejects a log level outside 0..11 and one that is not a number", () => {
    assert.equal(error(parseFlags(["-v", "12"])), "nutcracker: option -v value 12 is out of range (0..11)");
    assert.equal(error(parseFlags(["-v", "x"])), "nutcracker: option -v requires a number");
    assert.equal(error(parseFlags(["-v", "-1"])), "nutcracker: option -v requires a number");
    assert.equal(ok(parseFlags(["-v", "0"])).verbose, 0);
    assert.equal(ok(parseFlags(["-v", "11"])).verbose, 11);
  });

  it("rejects an mbuf size outside 512..16777216 bytes, and zero", () => {
    const range = "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes";
    assert.equal(error(parseFlags(["-m", "511"])), range);
    assert.equal(error(parseFlags(["-m", "16777217"])), range);
    assert.equal(error(parseFlags(["-m", "0"])), "nutcracker: option -m requires a non-zero number");
    assert.equal(error(parseFlags(["-m", "4k"])), "nutcracker: option -m requires a number");
    assert.deepEqual([512, 16777216].map((n) => ok(parseFlags(["-m", String(n)])).mbufSize), [512, 16777216]);
  });

  it("rejects a stats port outside 1..65535 and a non-numeric interval", () => {
    assert.equal(error(parseFlags(["-s", "0"])), "nutcracker: option -s value 0 is not a valid port");
    assert.equal(error(parseFlags(["-s", "65536"])), "nutcracker: option -s value 65536 is not a valid port");
    assert.equal(error(parseFlags(["-i", "soon"])), "nutcracker: option -i requires a number");
  });

  it("rejects unknown flags, missing values and stray arguments", () => {
    assert.equal(error(parseFlags(["-x"])), "nutcracker: invalid option -- 'x'");
    assert.equal(error(parseFlags(["--bogus"])), "nutcracker: unrecognized option '--bogus'");
    assert.equal(error(parseFlags(["-c"])), "nutcracker: option -c requires a file name");
    assert.equal(error(parseFlags(["--pid-file"])), "nutcracker: option -p requires a file name");
    assert.equal(error(parseFlags(["-a"])), "nutcracker: option -a requires a string");
    assert.equal(error(parseFlags(["-v"])), "nutcracker: option -v requires a number");
    assert.match(error(parseFlags(["stray"])), /^nutcracker: Unexpected argument 'stray'/);
  });

  it("lists every flag, short and long, with its default in the usage text", () => {
    const text = usage();
    const flags = [["-h", "--help"], ["-V", "--version"], ["-t", "--test-conf"], ["-d", "--daemonize"],
      ["-D", "--describe-stats"], ["-v", "--verbose"], ["-o", "--output"], ["-c", "--conf-file"],
      ["-s", "--stats-port"], ["-a", "--stats-addr"], ["-i", "--stats-interval"], ["-p", "--pid-file"],
      ["-m", "--mbuf-size"]];
    for (const [s, l] of flags) assert.ok(text.includes(`${s}, ${l}`), `${s}, ${l} missing`);
    for (const flag of ["--admin", "--admin-token", "--watch"]) assert.ok(text.includes(`${flag}=`) || text.includes(`${flag} `), flag);
    for (const value of Object.values(FLAG_DEFAULTS)) assert.ok(text.includes(String(value)), `${value} missing`);
    assert.ok(text.includes("accepted for compatibility (no effect)"));
  });
});

describe("nutcracker CLI", () => {
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nc-cli-"));
  });

  after(() => {
    killStarted();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("-V prints the version line to stderr and exits 0", async () => {
    const r = await runCli(["-V"]);
    assert.equal(r.code, 0);
    assert.equal(r.stderr.split("\n")[0], "This is nutcracker-0.5.0 (twemproxy-ts 0.1.0)");
    assert.equal(r.stdout, "");
  });

  it("-h prints the version and the usage text and exits 0", async () => {
    const r = await runCli(["--help"]);
    assert.equal(r.code, 0);
    assert.ok(r.stderr.startsWith("This is nutcracker-0.5.0"));
    assert.ok(r.stderr.includes(usage()));
  });

  it("-D describes every pool and server stats field of twemproxy 0.5.0", async () => {
    const r = await runCli(["-D"]);
    assert.equal(r.code, 0);
    const names = (section: string) =>
      r.stderr.split(`${section} stats:\n`)[1].split("\n\n")[0].split("\n").filter((l) => l.startsWith("  "))
        .map((l) => l.trim().split(/\s+/)[0]);
    assert.deepEqual(names("pool"), ["client_eof", "client_err", "client_connections", "server_ejects",
      "forward_error", "fragments"]);
    assert.deepEqual(names("server"), ["server_eof", "server_err", "server_timedout", "server_connections",
      "server_ejected_at", "requests", "request_bytes", "responses", "response_bytes", "in_queue", "in_queue_bytes",
      "out_queue", "out_queue_bytes"]);
  });

  it("-t says the example configs' syntax is ok and exits 0", async () => {
    for (const file of ["conf/nutcracker.yml", "conf/demo.yml"]) {
      const r = await runCli(["-t", "-c", file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, `nutcracker: configuration file '${file}' syntax is ok\n`);
    }
  });

  it("-t prints the error with file and line, says the syntax is invalid and exits 1", async () => {
    const file = path.join(tmp, "bad.yml");
    fs.writeFileSync(file, "alpha:\n  listen: 127.0.0.1:22121\n  hash: foo\n  servers:\n   - 127.0.0.1:6379:1\n");
    const r = await runCli(["-t", "-c", file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `nutcracker: ${file}:3: pool 'alpha': "hash" "foo" is not a valid hash\n` +
      `nutcracker: configuration file '${file}' syntax is invalid\n`);
  });

  it("-t on a missing file says why and that the syntax is invalid", async () => {
    const file = path.join(tmp, "missing.yml");
    const r = await runCli(["-t", "-c", file]);
    assert.equal(r.code, 1);
    const [why, verdict] = r.stderr.trimEnd().split("\n");
    assert.match(why, new RegExp(`^nutcracker: failed to open configuration '${file}': .+`));
    assert.equal(verdict, `nutcracker: configuration file '${file}' syntax is invalid`);
  });

  it("exits 1 with the error and the usage text on a bad flag or an out-of-range value", async () => {
    const cases: Array<[string[], string]> = [
      [["-x"], "nutcracker: invalid option -- 'x'"],
      [["-v", "12"], "nutcracker: option -v value 12 is out of range (0..11)"],
      [["-m", "100"], "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes"],
    ];
    for (const [flags, line] of cases) {
      const r = await runCli(flags);
      assert.equal(r.code, 1, flags.join(" "));
      assert.equal(r.stderr.split("\n")[0], line);
      assert.ok(r.stderr.includes("Usage: nutcracker"));
    }
  });

  it("writes the pid file and the log file, and on SIGTERM closes, removes the pid file and exits 0", async () => {
    const { child, log, pidFile } = await startProxy("term");
    await waitUntil(() => read(pidFile) !== "", "the pid file");
    assert.equal(Number(read(pidFile)), child.pid);
    await waitUntil(() => read(log).includes(`started on pid ${child.pid}`), "the start line in the log");
    assert.match(read(log), /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] /);
    kill(child.pid, "SIGTERM");
    const r = await child.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.existsSync(pidFile), false);
    assert.ok(read(log).includes("signal 15 (SIGTERM) received, exiting"));
  });

  it("serves twemproxy's stats JSON on -s/-a and the admin API on --admin", async () => {
    const port = await freePort();
    const statsPort = await freePort();
    const adminPort = await freePort();
    const conf = writeConf("stats.yml", port);
    const child = startCli(["-c", conf, "-s", String(statsPort), "-a", "127.0.0.1", "-i", "100",
      "--admin", `127.0.0.1:${adminPort}`]);
    try {
      await waitForPort(statsPort, 30_000);
      const stats = JSON.parse(await readAll(statsPort));
      assert.equal(stats.service, "nutcracker");
      assert.equal(stats.version, "0.5.0");
      assert.deepEqual(Object.keys(stats.alpha).slice(0, 6),
        ["client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"]);
      await waitForPort(adminPort, 30_000);
      const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      assert.match(metrics, /# TYPE nutcracker_requests_total counter\n/);
      // The only server (port 1) refuses connections, so the pool is not healthy.
      assert.equal((await fetch(`http://127.0.0.1:${adminPort}/health`)).status, 503);
    } finally {
      kill(child.pid, "SIGTERM");
      assert.equal((await child.done).code, 0);
    }
  });

  it("exits 0 on SIGINT too", async () => {
    const { child, log } = await startProxy("int");
    await waitUntil(() => read(log).includes("started on pid"), "the start line in the log");
    kill(child.pid, "SIGINT");
    const r = await child.done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(read(log).includes("signal 2 (SIGINT) received, exiting"));
  });

  it("reopens the log file on SIGHUP, so a rotated log gets a new file", async () => {
    const { child, log } = await startProxy("hup");
    await waitUntil(() => read(log).includes("started on pid"), "the start line in the log");
    const rotated = `${log}.1`;
    fs.renameSync(log, rotated);
    kill(child.pid, "SIGHUP");
    await waitUntil(() => fs.existsSync(log), "a new log file");
    assert.ok(read(rotated).includes("signal 1 (SIGHUP) received, reopening log file"));
    kill(child.pid, "SIGTTIN");
    await waitUntil(() => read(log).includes("log level raised to 6"), "the level line in the new log");
    assert.equal(read(rotated).includes("log level raised"), false);
    kill(child.pid, "SIGTERM");
    assert.equal((await child.done).code, 0);
  });

  it("raises the log level on SIGTTIN and lowers it on SIGTTOU, logging each new level", async () => {
    const { child, log } = await startProxy("ttin", ["-v", "4"]);
    kill(child.pid, "SIGTTIN");
    await waitUntil(() => read(log).includes("log level raised to 5"), "the raised level");
    // One at a time: two pending signals of one kind may be delivered once.
    kill(child.pid, "SIGTTOU");
    await waitUntil(() => read(log).includes("log level lowered to 4"), "the first lowered level");
    kill(child.pid, "SIGTTOU");
    await waitUntil(() => read(log).includes("log level lowered to 3"), "the second lowered level");
    kill(child.pid, "SIGTERM");
    assert.equal((await child.done).code, 0);
  });

  it("-p writes the pid file only once the pool listens", async () => {
    const port = await freePort();
    const pidFile = path.join(tmp, "order.pid");
    const child = startCli(["-c", writeConf("order.yml", port), "-p", pidFile, "-s", String(await freePort())]);
    const deadline = Date.now() + 30_000;
    while (!fs.existsSync(pidFile) && Date.now() < deadline) await sleep(1);
    assert.equal(await canConnect(port), true, "the pool listens by the time its pid file exists");
    kill(child.pid, "SIGTERM");
    assert.equal((await child.done).code, 0);
  });

  it("exits 1 and logs why when the listen address is taken", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const conf = writeConf("busy.yml", port);
      const pidFile = path.join(tmp, "busy.pid");
      const r = await runCli(["-c", conf, "-p", pidFile]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /failed to start the proxy/);
      assert.equal(fs.existsSync(pidFile), false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("-d returns at once with the proxy running in the background, which SIGTERM stops", async () => {
    const port = await freePort();
    const conf = writeConf("daemon.yml", port);
    const log = path.join(tmp, "daemon.log");
    const pidFile = path.join(tmp, "daemon.pid");
    const t0 = Date.now();
    const r = await runCli(["-d", "-c", conf, "-o", log, "-p", pidFile, "-s", String(await freePort())], 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 < 15_000, "the parent returns once the child listens, not at the 30 s bound");
    const pid = Number(read(pidFile));
    assert.ok(pid > 0, "pid file written before the parent returned");
    track(pid);
    await waitForPort(port, 5_000);
    assert.ok(read(log).includes(`started on pid ${pid}`));
    kill(pid, "SIGTERM");
    // Watch the pid file, not the pid: an orphaned daemon may linger as a zombie where nothing reaps it.
    await waitUntil(() => !fs.existsSync(pidFile), "the daemon to remove its pid file");
    assert.equal(await canConnect(port), false);
    untrack(pid);
  });

  it("-d exits 1 with the background process's error when the config is bad", async () => {
    const file = path.join(tmp, "daemon-bad.yml");
    fs.writeFileSync(file, "alpha:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:6379:0\n");
    const r = await runCli(["-d", "-c", file], 30_000);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}:4: pool 'alpha': "servers" "127.0.0.1:6379:0" has a zero weight`));
  });
});
