// `jobctl completion bash`: a completion script made from the same command and flag definitions
// as the parser, so it cannot drift; job ids complete from `jobctl list -aq`. zsh users can load
// it through bashcompinit.
import type { CAC } from 'cac';

function flagsOf(options: readonly { rawName: string }[]): string[] {
  return options.flatMap((option) =>
    option.rawName
      .replace(/[<[].*$/, '')
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name.startsWith('-')),
  );
}

export function bashCompletion(cli: CAC): string {
  const global = flagsOf(cli.globalCommand.options);
  const commands = cli.commands.map((command) => command.name);
  const cases = cli.commands
    .map((command) => {
      const flags = [...flagsOf(command.options), ...global].join(' ');
      const takesId = command.args.some((arg) => arg.value.includes('id'));
      return `    ${command.name}) flags="${flags}"; ids=${takesId ? 1 : 0} ;;`;
    })
    .join('\n');
  return `# bash completion for jobctl: source <(jobctl completion bash)
_jobctl() {
  local cur=\${COMP_WORDS[COMP_CWORD]} command="" word flags="${global.join(' ')}" ids=0
  for word in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    [[ $word == -- ]] && return 0
    [[ -z $command && $word != -* ]] && command=$word
  done
  if [[ -z $command ]]; then
    COMPREPLY=($(compgen -W "${commands.join(' ')} help" -- "$cur"))
    [[ $cur == -* ]] && COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return 0
  fi
  case $command in
${cases}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif ((ids)); then
    COMPREPLY=($(compgen -W "$(jobctl list -aq 2>/dev/null)" -- "$cur"))
  fi
}
complete -o default -F _jobctl jobctl
`;
}
