// jobctl: the command-line client of jobworker, in Docker's words. This file wires the commands
// and flags into cac, turns argv into a command call, and every failure into one line and an
// exit code (exit-codes.ts). The job's argv is never parsed: see cli-args.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { format } from 'node:util';
import { cac } from 'cac';
import type { CAC, Command } from 'cac';
import { APP_ROOT } from '../../shared/app-layout.ts';
import { isOn, lastString, optionKey, protectArgv, unmark } from './cli-args.ts';
import type { ArgvGrammar, ParsedOptions } from './cli-args.ts';
import { UsageError } from './cli-errors.ts';
import { bashCompletion } from './completion.ts';
import { EXIT } from './exit-codes.ts';
import { JOB_FLAGS, LIMIT_FLAGS, parseDuration, startRequestFromFlags } from './limit-flags.ts';
import type { Session } from './session.ts';
import { writeTo } from './write-to.ts';

// Everything that talks to the server (the session, the commands, the gRPC error texts) loads
// gRPC and the generated code, which take longer to load than node takes to start: those modules
// are imported when a command first needs them, so that version, help, completion and a bad flag
// answer as fast as node starts.

export const VERSION = (
  JSON.parse(readFileSync(join(APP_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

function versionLine(): string {
  return `jobctl ${VERSION} (node ${process.version})\n`;
}

/** Commands whose failures before a job exists exit 125 (the others exit 1). */
const JOB_COMMANDS = new Set(['run', 'start']);

export interface Io {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
}

const HELP_JOB_ARGV = `  Everything after -- (or from the first word that is not a flag) is the job's argv,
  passed as is: never split, never given to a shell. Sizes take k, m, g (1k = 1024);
  durations ms, s, m, h (1m30s); a bare number is seconds.`;

type Action = (args: readonly string[], options: ParsedOptions) => Promise<number>;

const HELP_CONNECTION = `  Each setting comes from the first of: its flag; the environment (JOBCTL_SERVER,
  JOBCTL_CERT, JOBCTL_KEY, JOBCTL_CA, JOBCTL_TLS_NAME); the context named by --context,
  JOBCTL_CONTEXT or "currentContext" in $XDG_CONFIG_HOME/jobctl/config.json
  (~/.config/jobctl/config.json); the development stack of this checkout after
  'sudo npm start'. The server defaults to 127.0.0.1:50051.`;

const HELP_EXIT_CODES = `  0-255    run: the job's own exit code
  128+N    run: the job was killed by signal N (137: SIGKILL, as when out of memory)
  125      bad flags (no request is sent), no connection, or the job refused or lost
  126      run, start: the program could not be executed
  127      run, start: the program was not found
  130      run: detached by a second Ctrl-C
  1        status, stop, logs, list: the request failed`;

/** What the command actions need from the one invocation main() is running. */
interface Invocation {
  /** The job's argv: everything after `--`, untouched. */
  jobArgv: readonly string[];
  /** jobctl's environment, for `--env NAME`. */
  env: NodeJS.ProcessEnv;
  /** The session, made on first use with the connection flags given. */
  session(options: ParsedOptions): Promise<Session>;
  /** jobctl's stdout, written with back-pressure. */
  out(text: string): Promise<void>;
}

/** cac calls an action with the positional arguments, then the options. */
function act(action: Action): (...args: unknown[]) => Promise<number> {
  return (...args) => action(args.slice(0, -1).flat() as string[], args.at(-1) as ParsedOptions);
}

function buildCli(invocation: Invocation): CAC {
  const cli = cac('jobctl');
  cli
    .usage('<command> [options]')
    .option('--server <host:port>', 'API address (default 127.0.0.1:50051)')
    .option('--cert <file>', 'Client certificate (PEM); its CN is who you are, its OU your role')
    .option('--key <file>', "The client certificate's private key (PEM)")
    .option('--ca <file>', "CA certificate that issued the server's certificate (PEM)")
    .option('--tls-name <name>', "Name to verify the server's certificate against")
    .option('--context <name>', 'Use this context of the config file')
    .option('--verbose', 'Explain the connection and show errors in detail');

  const jobFlags = (command: Command) => {
    for (const limit of LIMIT_FLAGS)
      command.option(`${limit.flag} ${limit.placeholder}`, limit.description);
    for (const flag of Object.values(JOB_FLAGS))
      command.option(`${flag.flag} ${flag.placeholder}`, flag.description);
    return command;
  };

  jobFlags(
    cli
      .command('run', 'Run a command as a job, stream its output, exit with its status')
      .usage('run [options] [--] COMMAND [ARG...]')
      .option('-d, --detach', 'Start it and print its id, as start does'),
  )
    .example('  $ jobctl run -- uname -a')
    .example('  $ jobctl run --memory 256m --cpus 0.5 -- python3 train.py --epochs 3')
    .example("  $ jobctl run --timeout 30s --pids-limit 100 -- sh -c 'make && make test'")
    .example('  $ jobctl run -e DEBUG=1 -w /tmp -- ls -la')
    .action(act((_args, options) => run(options, false)));

  jobFlags(
    cli
      .command('start', 'Start a command as a job and print its id')
      .usage('start [options] [--] COMMAND [ARG...]')
      .option('--json', 'Print the whole job as JSON'),
  )
    .example('  $ id=$(jobctl start --memory 1g -- ./batch.sh)')
    .example('  $ jobctl start --json -- sleep 60 | jq -r .id')
    .action(act((_args, options) => run(options, true)));

  cli
    .command('stop <...ids>', 'Stop jobs: SIGTERM, a grace period, then SIGKILL; prints each id')
    .option('--grace <duration>', "Time between SIGTERM and SIGKILL (default: the server's)")
    .example('  $ jobctl stop 3f2a9c')
    .example('  $ jobctl stop --grace 30s 3f2a9c0b1d2e')
    .example('  $ jobctl list -q | xargs jobctl stop')
    .action(
      act(async (ids, options) => {
        const grace = lastString(options, 'grace');
        const graceMs = grace === undefined ? undefined : parseDuration('--grace', grace, true);
        const { stopCommand } = await import('./commands/stop.ts');
        return stopCommand(await session(options), ids, graceMs);
      }),
    );

  cli
    .command('status <id>', 'Show a job: state, exit status, limits, usage')
    .option('--json', 'Print the job as JSON')
    .example('  $ jobctl status 3f2a9c')
    .example('  $ jobctl status --json 3f2a9c | jq .exitCode')
    .action(
      act(async ([id], options) => {
        const { statusCommand } = await import('./commands/status.ts');
        return statusCommand(await session(options), id ?? '', isOn(options, 'json'));
      }),
    );

  cli
    .command('logs <id>', "Print a job's output from the start: stdout to stdout, stderr to stderr")
    .option('-f, --follow', 'Follow until the job ends (resumes if the connection drops)')
    .example('  $ jobctl logs 3f2a9c')
    .example('  $ jobctl logs -f 3f2a9c 2>/dev/null | grep ERROR')
    .action(
      act(async ([id], options) => {
        const { logsCommand } = await import('./commands/logs.ts');
        return logsCommand(await session(options), id ?? '', isOn(options, 'follow'));
      }),
    );

  cli
    .command('list', 'List jobs, newest first (running ones unless --all or --state)')
    .option('-a, --all', 'Include ended jobs')
    .option('--state <state>', 'Only jobs in this state: running, completed, failed, stopped')
    .option('--owner <name>', 'Only jobs of this owner')
    .option('-q, --quiet', 'Print only the ids')
    .option('--no-trunc', 'Do not shorten ids and commands')
    .option('--json', 'Print the jobs as a JSON array')
    .example('  $ jobctl list')
    .example('  $ jobctl list -a --state failed --owner alice')
    .example('  $ jobctl list -a --json | jq -r ".[] | select(.exitCode != 0) | .id"')
    .action(
      act(async (_args, options) => {
        const [{ listCommand }, { STATE_BY_NAME }] = await Promise.all([
          import('./commands/list.ts'),
          import('./job-view.ts'),
        ]);
        const stateText = lastString(options, 'state');
        const state = stateText === undefined ? undefined : STATE_BY_NAME[stateText];
        if (stateText !== undefined && state === undefined) {
          throw new UsageError(
            `--state ${JSON.stringify(stateText)}: must be one of ${Object.keys(STATE_BY_NAME).join(', ')}`,
          );
        }
        return listCommand(await session(options), {
          all: isOn(options, 'all'),
          state,
          owner: lastString(options, 'owner'),
          quiet: isOn(options, 'quiet'),
          json: isOn(options, 'json'),
          full: options.trunc === false,
        });
      }),
    );

  cli
    .command(
      'completion <shell>',
      'Print a shell completion script (bash; zsh through bashcompinit)',
    )
    .example('  $ source <(jobctl completion bash)')
    .example('  $ jobctl completion bash > /etc/bash_completion.d/jobctl')
    .action(
      act(async ([shell]) => {
        if (shell !== 'bash')
          throw new UsageError(
            `completion ${JSON.stringify(shell)}: only bash is supported (zsh: autoload bashcompinit && bashcompinit, then source the bash one)`,
          );
        await invocation.out(bashCompletion(cli));
        return EXIT.ok;
      }),
    );

  // As `docker version`; also what `npx jobctl version` reaches (npx keeps --version for itself).
  cli
    .command('version', 'Print the version of jobctl')
    .example('  $ jobctl version')
    .action(
      act(async () => {
        await invocation.out(versionLine());
        return EXIT.ok;
      }),
    );

  cli.help((sections) => {
    if (!cli.matchedCommand) {
      sections.push({ title: 'Connection', body: HELP_CONNECTION });
      sections.push({ title: 'Exit codes', body: HELP_EXIT_CODES });
    } else if (JOB_COMMANDS.has(cli.matchedCommand.name)) {
      sections.push({ title: 'The command', body: HELP_JOB_ARGV });
    }
    // cac leaves a space after each option's description.
    return sections.map((section) => ({ ...section, body: section.body.replace(/ +$/gm, '') }));
  });
  cli.option('--version', 'Print the version of jobctl');
  return cli;

  function session(options: ParsedOptions): Promise<Session> {
    return invocation.session(options);
  }
  async function run(options: ParsedOptions, detached: boolean): Promise<number> {
    const request = startRequestFromFlags(options, invocation.jobArgv, invocation.env);
    const json = isOn(options, 'json');
    if (detached || isOn(options, 'detach')) {
      const { startCommand } = await import('./commands/start.ts');
      return startCommand(await session(options), request, json);
    }
    const { runJob } = await import('./commands/run.ts');
    return runJob(await session(options), request);
  }
}

function grammarOf(cli: CAC): ArgvGrammar {
  const valueFlags = new Map<string, string>();
  for (const command of [cli.globalCommand, ...cli.commands]) {
    for (const option of command.options) {
      if (option.isBoolean) continue;
      const spellings = option.rawName
        .replace(/[<[].*$/, '')
        .split(',')
        .map((name) => name.trim());
      const long = spellings.find((name) => name.startsWith('--')) ?? spellings[0] ?? '';
      for (const spelling of spellings) valueFlags.set(spelling, long);
    }
  }
  return { valueFlags, jobCommands: JOB_COMMANDS };
}

/** cac prints help and version with console.info: send them to our stdout instead. */
function printingTo<T>(stdout: Writable, make: () => T): T {
  const info = console.info;
  console.info = (...args: unknown[]) => stdout.write(`${format(...args)}\n`);
  try {
    return make();
  } finally {
    console.info = info;
  }
}

/** cac's messages, said as jobctl says things. */
function usageMessage(error: Error): string {
  const text = error.message;
  const unknown = /^Unknown option `(.+)`$/.exec(text);
  if (unknown) return `unknown flag ${unknown[1]}`;
  const missingValue = /^option `([^ `]+).*` value is missing$/.exec(text);
  if (missingValue) return `${missingValue[1]?.replace(/^.*, /, '')} needs a value`;
  const missingArgs = /^missing required args for command `(.+)`$/.exec(text);
  if (missingArgs) return `missing argument: jobctl ${missingArgs[1]}`;
  const unused = /^Unused args: (.+)$/.exec(text);
  if (unused) return `unexpected argument ${unused[1]?.replaceAll('`', '')}`;
  return text;
}

export async function main(io: Io): Promise<number> {
  let session: Session | undefined;
  let command = '';
  const stderrLine = (line: string) => io.stderr.write(`${line}\n`);
  const invocation: Invocation = {
    jobArgv: [],
    env: io.env,
    out: (text) => writeTo(io.stdout, text),
    session: async (options) => {
      if (session) return session;
      const { Session } = await import('./session.ts');
      session = new Session({
        flags: {
          server: lastString(options, 'server'),
          cert: lastString(options, 'cert'),
          key: lastString(options, 'key'),
          ca: lastString(options, 'ca'),
          tlsName: lastString(options, optionKey('--tls-name')),
          context: lastString(options, 'context'),
        },
        env: io.env,
        verbose: isOn(options, 'verbose'),
        stdout: io.stdout,
        stderr: io.stderr,
      });
      return session;
    },
  };
  const cli = buildCli(invocation);
  const argv = io.argv[0] === 'help' ? [...io.argv.slice(1), '--help'] : [...io.argv];
  try {
    const parsed = printingTo(io.stdout, () =>
      cli.parse(['node', 'jobctl', ...protectArgv(argv, grammarOf(cli))], { run: false }),
    );
    command = cli.matchedCommandName ?? '';
    if (parsed.options.help === true) return EXIT.ok;
    if (parsed.options.version === true) {
      io.stdout.write(versionLine());
      return EXIT.ok;
    }
    if (!cli.matchedCommand) {
      if (cli.args.length === 0) {
        printingTo(io.stdout, () => cli.outputHelp());
        return EXIT.ok;
      }
      throw new UsageError(`unknown command ${JSON.stringify(unmark(cli.args[0]))}`);
    }
    cli.args = unmark([...cli.args]);
    const options: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(cli.options))
      options[key] = key === '--' ? value : unmark(value);
    cli.options = options;
    invocation.jobArgv = (options['--'] as string[] | undefined) ?? [];
    if (!JOB_COMMANDS.has(command) && invocation.jobArgv.length > 0) {
      throw new UsageError(`unexpected argument ${JSON.stringify(invocation.jobArgv[0])}`);
    }
    return await (cli.runMatchedCommand() as Promise<number>);
  } catch (error) {
    const isCac = error instanceof Error && error.name === 'CACError';
    const explained = !isCac && session ? await session.explain(error) : error;
    const { describeFailure } = await import('./failures.ts');
    const failure = describeFailure(
      isCac ? new UsageError(usageMessage(error)) : explained,
      session?.failureContext(),
    );
    const where = command ? `jobctl ${command}` : 'jobctl';
    if (isCac || error instanceof UsageError) {
      stderrLine(`${where}: ${failure.message} (see '${where} --help')`);
    } else {
      stderrLine(`jobctl: ${failure.message}`);
    }
    if (session?.verbose && failure.detail)
      stderrLine(`  ${failure.detail.replaceAll('\n', '\n  ')}`);
    return failure.exitCode ?? (JOB_COMMANDS.has(command) ? EXIT.refused : EXIT.failed);
  } finally {
    session?.close();
  }
}

/** For the bin (jobctl.ts): run with the process's argv and streams, then exit with the code. */
export async function runJobctl(): Promise<never> {
  // A reader that went away (jobctl logs … | head) ends jobctl quietly, as it would a shell tool.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(EXIT.brokenPipe);
      throw error;
    });
  }
  const code = await main({
    argv: process.argv.slice(2),
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
  });
  process.exit(code);
}
