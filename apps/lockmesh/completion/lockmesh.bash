# bash completion for lockmesh (and flom, which takes FLoM's flags): subcommands, flags and
# their fixed values, files for file flags, and resource names from `lockmesh locks` for
# `lockmesh lock RESOURCE`. Flags are read from the program's own --help, so they are always
# those of the installed binary. Installed as share/bash-completion/completions/lockmesh;
# zsh loads this same file through bashcompinit (share/zsh/vendor-completions/_lockmesh).

# The long and short flags that `lockmesh WORDS... --help` lists.
_lockmesh_flags() {
  local bin=$1
  shift
  "$bin" "$@" --help 2>/dev/null |
    grep -oE '^ +(-[A-Za-z0-9],)?--[A-Za-z0-9][A-Za-z0-9-]*' | tr ',' '\n' | tr -d ' '
}

# The subcommands that `lockmesh WORDS... --help` lists.
_lockmesh_subcommands() {
  local bin=$1
  shift
  "$bin" "$@" --help 2>/dev/null | sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

# Resource names the node at the socket (the one of --socket on the line, else the default)
# knows; nothing if no node answers (`locks` never starts one). At most 2 s.
_lockmesh_resources() {
  local bin=$1 socket=$2 prefix=$3
  local args=(locks --json)
  [[ -n $socket ]] && args+=(--socket "$socket")
  [[ -n $prefix ]] && args+=(--prefix "$prefix")
  timeout 2 "$bin" "${args[@]}" 2>/dev/null |
    sed -n 's/^ *"resource": "\(.*\)",$/\1/p' | sort -u
}

_lockmesh() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  local bin=${COMP_WORDS[0]}
  COMPREPLY=()

  # The subcommand path (lock, cert node, ...) and what else is on the line.
  local path=() socket="" dashdash=0 positionals=0 i w
  local flom=0
  [[ ${bin##*/} == flom ]] && flom=1
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ $w == -- ]]; then
      dashdash=1
      break
    fi
    if [[ $w == --socket ]]; then
      socket=${COMP_WORDS[i + 1]}
    elif [[ $w != -* ]] && ((flom == 0)); then
      local prevw=${COMP_WORDS[i - 1]}
      if [[ $prevw == -* && $prevw != *=* ]] && _lockmesh_takes_value "$prevw"; then
        continue
      fi
      local subs
      subs=$(_lockmesh_subcommands "$bin" "${path[@]}")
      if [[ -n $subs ]] && grep -qx -- "$w" <<<"$subs"; then
        path+=("$w")
      else
        ((positionals++))
      fi
    fi
  done
  if ((flom == 1)); then path=(); fi

  # After `--`: the command to run and its arguments.
  if ((dashdash)); then
    COMPREPLY=($(compgen -c -- "$cur" | sort -u))
    return
  fi

  # The value of a flag.
  case $prev in
    --socket | --config | --data-dir | --tls-cert | --tls-key | --tls-ca | --out | \
      --trusted-fingerprints | --ca | --cert | --key | --log-file)
      COMPREPLY=($(compgen -f -- "$cur"))
      return
      ;;
    -m | --mode)
      COMPREPLY=($(compgen -W "NL CR CW PR PW EX shared exclusive" -- "$cur"))
      return
      ;;
    --on-lost)
      COMPREPLY=($(compgen -W "term kill ignore" -- "$cur"))
      return
      ;;
    --security)
      COMPREPLY=($(compgen -W "none encrypt mutual tofu" -- "$cur"))
      return
      ;;
    --log-level)
      COMPREPLY=($(compgen -W "error warn info debug" -- "$cur"))
      return
      ;;
    --log-format)
      COMPREPLY=($(compgen -W "text json" -- "$cur"))
      return
      ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_lockmesh_flags "$bin" "${path[@]}")" -- "$cur"))
    return
  fi
  if ((flom == 1)); then
    return
  fi
  if ((${#path[@]} == 0)); then
    COMPREPLY=($(compgen -W "$(_lockmesh_subcommands "$bin") help flom" -- "$cur"))
    return
  fi
  local subs
  subs=$(_lockmesh_subcommands "$bin" "${path[@]}")
  if [[ -n $subs ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  # lock RESOURCE: the names the node knows.
  if [[ ${path[0]} == lock ]] && ((positionals == 0)); then
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$(_lockmesh_resources "$bin" "$socket" "$cur")" -- "$cur"))
    return
  fi
}

# True if flag $1 takes a value (so the next word is not a subcommand or positional).
_lockmesh_takes_value() {
  case $1 in
    -m | --mode | -w | --wait | -q | --quantity | --on-lost | --grace | --config | --socket | \
      --data-dir | --node-id | --cluster | --listen | --advertise | --join | --security | \
      --tls-cert | --tls-key | --tls-ca | --trusted-fingerprints | --expect | --voters | \
      --session-ttl | --dead-after | --election-timeout | --snapshot-every | --token-floor | \
      --log-level | --log-format | --log-max-bytes | --prefix | --node | --clients | --seconds | \
      --scenario | --locks | --name-bytes | --hold-seconds | --runs | --node-socket | \
      --handshake-timeout | --max-pending-per-source | --max-pending-connections | \
      --discovery-port | --discovery-group4 | --discovery-group6 | --discovery-interface | \
      --discovery-ttl | --socket-group | --idle-exit | --out | --ca | --cert | --key | --days)
      return 0
      ;;
  esac
  return 1
}

complete -F _lockmesh lockmesh flom
