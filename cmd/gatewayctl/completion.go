package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// completionShells are the shells completionScript can generate for.
var completionShells = []string{"bash", "zsh", "fish"}

func (a *app) completionCommand(root *ffcli.Command) *ffcli.Command {
	fs := a.flagSet("completion")
	return &ffcli.Command{
		Name:       "completion",
		ShortUsage: "gatewayctl completion bash|zsh|fish",
		ShortHelp:  "Print a shell completion script for gatewayctl.",
		LongHelp: `Prints a completion script generated from gatewayctl's own command tree
(commands, their flags, and fixed argument choices), so it is always in step
with the binary. The packages install these scripts; by hand:

  bash:  gatewayctl completion bash > /etc/bash_completion.d/gatewayctl
  zsh:   gatewayctl completion zsh > "${fpath[1]}/_gatewayctl"
  fish:  gatewayctl completion fish > ~/.config/fish/completions/gatewayctl.fish`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usageErr(fmt.Errorf("completion needs one shell: %s", strings.Join(completionShells, ", ")))
			}
			s, err := completionScript(args[0], root)
			if err != nil {
				return usageErr(err)
			}
			_, err = io.WriteString(a.stdout, s)
			return err
		},
	}
}

// compNode is one command of the tree, flattened for the generators.
type compNode struct {
	path    string // space-separated names below the root; "" for the root
	cmd     *ffcli.Command
	subs    []*ffcli.Command
	flags   []*flag.Flag
	choices []string // fixed positional choices, from ShortUsage ("bash|zsh|fish")
}

// walkCommands flattens the tree depth-first, root first.
func walkCommands(root *ffcli.Command) []compNode {
	var out []compNode
	var walk func(path string, c *ffcli.Command)
	walk = func(path string, c *ffcli.Command) {
		n := compNode{path: path, cmd: c, subs: c.Subcommands, choices: usageChoices(c)}
		if c.FlagSet != nil {
			c.FlagSet.VisitAll(func(f *flag.Flag) { n.flags = append(n.flags, f) })
		}
		out = append(out, n)
		for _, s := range c.Subcommands {
			p := s.Name
			if path != "" {
				p = path + " " + s.Name
			}
			walk(p, s)
		}
	}
	walk("", root)
	return out
}

// usageChoices finds a word like "bash|zsh|fish" in a leaf command's
// ShortUsage: the convention by which a command offers fixed choices for
// its argument to the completion scripts.
func usageChoices(c *ffcli.Command) []string {
	if len(c.Subcommands) > 0 {
		return nil
	}
	for _, w := range strings.Fields(c.ShortUsage) {
		if strings.Contains(w, "|") && !strings.ContainsAny(w, "[]<>") {
			return strings.Split(w, "|")
		}
	}
	return nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func flagHelp(f *flag.Flag) string {
	_, usage := flag.UnquoteUsage(f)
	return usage
}

// completionScript generates the completion script for shell ("bash",
// "zsh" or "fish") by walking root's command tree and flags.
func completionScript(shell string, root *ffcli.Command) (string, error) {
	nodes := walkCommands(root)
	name := root.Name
	switch shell {
	case "bash":
		return bashScript(name, nodes), nil
	case "zsh":
		return zshScript(name, nodes), nil
	case "fish":
		return fishScript(name, nodes), nil
	}
	return "", fmt.Errorf("no completion for shell %q (choose one of %s)", shell, strings.Join(completionShells, ", "))
}

// funcName makes a shell function name from the program name.
func funcName(prog string) string {
	return "_" + strings.NewReplacer("-", "_", ".", "_").Replace(prog)
}

// shellHelpers writes the two case-statement helpers bash and zsh share:
// FN_is_sub PATH WORD and FN_takes_value PATH FLAG.
func shellHelpers(b *strings.Builder, fn string, nodes []compNode) {
	fmt.Fprintf(b, "%s_is_sub() {\n    case \"$1/$2\" in\n", fn)
	var subs []string
	for _, n := range nodes {
		for _, s := range n.subs {
			subs = append(subs, fmt.Sprintf("%q", n.path+"/"+s.Name))
		}
	}
	if len(subs) > 0 {
		fmt.Fprintf(b, "        %s) return 0 ;;\n", strings.Join(subs, "|"))
	}
	b.WriteString("    esac\n    return 1\n}\n\n")

	fmt.Fprintf(b, "%s_takes_value() {\n    case \"$1/$2\" in\n", fn)
	var vals []string
	for _, n := range nodes {
		for _, f := range n.flags {
			if !isBool(f) {
				vals = append(vals, fmt.Sprintf("%q|%q", n.path+"/-"+f.Name, n.path+"/--"+f.Name))
			}
		}
	}
	if len(vals) > 0 {
		fmt.Fprintf(b, "        %s) return 0 ;;\n", strings.Join(vals, "|"))
	}
	b.WriteString("    esac\n    return 1\n}\n\n")
}

// pathWalk is the loop, shared by bash and zsh, that finds the command path
// from the words before the cursor. WORDS, FIRST and LAST are the shell's
// word array and index range.
func pathWalk(b *strings.Builder, fn, words, first, last string) {
	fmt.Fprintf(b, `    local cmdpath="" w i skip=0
    for (( i=%s; i<%s; i++ )); do
        w="${%s[i]}"
        if (( skip )); then skip=0; continue; fi
        case "$w" in
            --) break ;;
            -*=*) continue ;;
            -*) %s_takes_value "$cmdpath" "$w" && skip=1; continue ;;
        esac
        if %s_is_sub "$cmdpath" "$w"; then cmdpath="${cmdpath:+$cmdpath }$w"; fi
    done
`, first, last, words, fn, fn)
}

func bashScript(prog string, nodes []compNode) string {
	fn := funcName(prog)
	var b strings.Builder
	fmt.Fprintf(&b, "# bash completion for %s (generated by: %s completion bash)\n\n", prog, prog)
	shellHelpers(&b, fn, nodes)
	fmt.Fprintf(&b, "%s() {\n", fn)
	b.WriteString("    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"\"\n")
	b.WriteString("    (( COMP_CWORD > 0 )) && prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
	pathWalk(&b, fn, "COMP_WORDS", "1", "COMP_CWORD")
	fmt.Fprintf(&b, "    if [[ \"$prev\" == -* && \"$prev\" != *=* ]] && %s_takes_value \"$cmdpath\" \"$prev\"; then\n", fn)
	b.WriteString("        COMPREPLY=()\n        return 0\n    fi\n")
	b.WriteString("    local words flags\n    case \"$cmdpath\" in\n")
	for _, n := range nodes {
		var words []string
		for _, s := range n.subs {
			words = append(words, s.Name)
		}
		words = append(words, n.choices...)
		var flags []string
		for _, f := range n.flags {
			flags = append(flags, "--"+f.Name)
		}
		fmt.Fprintf(&b, "        %q) words=%q; flags=%q ;;\n", n.path, strings.Join(words, " "), strings.Join(flags, " "))
	}
	b.WriteString("    esac\n")
	b.WriteString("    if [[ \"$cur\" == -* ]]; then\n")
	b.WriteString("        COMPREPLY=( $(compgen -W \"$flags\" -- \"$cur\") )\n")
	b.WriteString("    else\n")
	b.WriteString("        COMPREPLY=( $(compgen -W \"$words\" -- \"$cur\") )\n")
	b.WriteString("    fi\n    return 0\n}\n\n")
	fmt.Fprintf(&b, "complete -F %s %s\n", fn, prog)
	return b.String()
}

// zshEntry builds a single-quoted _describe entry "name:desc" (colons in
// the parts escaped; desc may be empty).
func zshEntry(name, desc string) string {
	s := strings.ReplaceAll(name, ":", `\:`)
	if desc != "" {
		s += ":" + strings.ReplaceAll(desc, ":", `\:`)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func zshScript(prog string, nodes []compNode) string {
	fn := funcName(prog)
	var b strings.Builder
	fmt.Fprintf(&b, "#compdef %s\n# zsh completion for %s (generated by: %s completion zsh)\n\n", prog, prog, prog)
	shellHelpers(&b, fn, nodes)
	fmt.Fprintf(&b, "%s() {\n", fn)
	b.WriteString("    local cur=\"${words[CURRENT]}\" prev=\"${words[CURRENT-1]}\"\n")
	pathWalk(&b, fn, "words", "2", "CURRENT")
	fmt.Fprintf(&b, "    if [[ \"$prev\" == -* && \"$prev\" != *=* ]] && %s_takes_value \"$cmdpath\" \"$prev\"; then\n", fn)
	b.WriteString("        _message 'value'\n        return 0\n    fi\n")
	b.WriteString("    local -a cmds flags\n    case \"$cmdpath\" in\n")
	for _, n := range nodes {
		var cmds, flags []string
		for _, s := range n.subs {
			cmds = append(cmds, zshEntry(s.Name, s.ShortHelp))
		}
		for _, c := range n.choices {
			cmds = append(cmds, zshEntry(c, ""))
		}
		for _, f := range n.flags {
			flags = append(flags, zshEntry("--"+f.Name, flagHelp(f)))
		}
		fmt.Fprintf(&b, "        %q)\n            cmds=(%s)\n            flags=(%s) ;;\n", n.path,
			strings.Join(cmds, " "), strings.Join(flags, " "))
	}
	b.WriteString("    esac\n")
	b.WriteString("    if [[ \"$cur\" == -* ]]; then\n        _describe -t flags 'flag' flags\n")
	b.WriteString("    else\n        _describe -t commands 'command' cmds\n    fi\n}\n\n")
	fmt.Fprintf(&b, "if [ \"$funcstack[1]\" = \"%s\" ]; then\n    %s \"$@\"\nelse\n    compdef %s %s\nfi\n", fn, fn, fn, prog)
	return b.String()
}

// fishQuote single-quotes s for fish.
func fishQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

func fishScript(prog string, nodes []compNode) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# fish completion for %s (generated by: %s completion fish)\n\n", prog, prog)
	fmt.Fprintf(&b, "complete -c %s -f\n", prog)
	// Flags of the root are global: every command accepts them.
	global := map[string]bool{}
	for _, f := range nodes[0].flags {
		global[f.Name] = true
		fmt.Fprintf(&b, "complete -c %s -l %s%s -d %s\n", prog, f.Name, fishArg(f), fishQuote(flagHelp(f)))
	}
	// names of all commands at each depth, for "not yet chosen" conditions
	for _, n := range nodes {
		cond := fishCondition(n)
		for _, s := range n.subs {
			fmt.Fprintf(&b, "complete -c %s -n %s -a %s -d %s\n", prog, fishQuote(cond), s.Name, fishQuote(s.ShortHelp))
		}
		if n.path == "" {
			continue
		}
		if len(n.choices) > 0 {
			fmt.Fprintf(&b, "complete -c %s -n %s -a %s\n", prog, fishQuote(cond), fishQuote(strings.Join(n.choices, " ")))
		}
		names := make([]string, 0, len(n.flags))
		for _, f := range n.flags {
			if !global[f.Name] {
				names = append(names, f.Name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			f := n.cmd.FlagSet.Lookup(name)
			fmt.Fprintf(&b, "complete -c %s -n %s -l %s%s -d %s\n", prog, fishQuote(cond), f.Name, fishArg(f), fishQuote(flagHelp(f)))
		}
	}
	return b.String()
}

func fishArg(f *flag.Flag) string {
	if isBool(f) {
		return ""
	}
	return " -r"
}

// fishCondition is the -n condition under which node n is the command
// being completed: its own name was seen and none of its subcommands yet.
func fishCondition(n compNode) string {
	if n.path == "" {
		var all []string
		for _, s := range n.subs {
			all = append(all, s.Name)
		}
		return "not __fish_seen_subcommand_from " + strings.Join(all, " ")
	}
	parts := strings.Fields(n.path)
	cond := "__fish_seen_subcommand_from " + parts[len(parts)-1]
	if len(n.subs) > 0 {
		var subs []string
		for _, s := range n.subs {
			subs = append(subs, s.Name)
		}
		cond += "; and not __fish_seen_subcommand_from " + strings.Join(subs, " ")
	}
	return cond
}
