package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

// errSubject is what the command at hand writes, so that a validation
// error can name it as the command line does (NAME "BAD-NAME"), not as the
// request did (body.BAD-NAME, path.name).
type errSubject struct {
	scope string // SCOPE
	name  string // NAME of a single-var command
	bulk  bool   // a bulk write, whose body's keys are var names
}

// noteSubject notes what a command whose args start with SCOPE writes:
// `vars` commands name one var, set, unset and import write many.
func (a *app) noteSubject(cmd *cobra.Command, args []string) {
	if len(args) == 0 {
		return
	}
	a.subject = errSubject{scope: args[0]}
	switch {
	case cmd.HasParent() && cmd.Parent().Name() == "vars" && len(args) > 1:
		a.subject.name = args[1]
	case cmd.Name() == "set" || cmd.Name() == "unset" || cmd.Name() == "import":
		a.subject.bulk = true
	}
}

// speakCLI rewrites a validation error's field locations into the
// command's words; any other error is returned as it is.
func (a *app) speakCLI(err error) string {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Type != client.TypeValidation || len(ce.Errors) == 0 {
		return errorMessage(err)
	}
	parts := make([]string, 0, len(ce.Errors))
	for _, fe := range ce.Errors {
		if where := a.subject.field(fe.Loc); where != "" {
			parts = append(parts, where+": "+fe.Msg)
		} else {
			parts = append(parts, fe.Msg)
		}
	}
	return strings.Join(parts, "; ")
}

// field names the location loc of a field error as the command line
// does; loc itself when it has no such name.
func (s errSubject) field(loc string) string {
	named := func(what, v string) string {
		if v == "" {
			return what
		}
		return fmt.Sprintf("%s %q", what, v)
	}
	switch loc {
	case "path.scope", "path.path":
		return named("SCOPE", s.scope)
	case "path.name":
		return named("NAME", s.name)
	case "body.value":
		if s.name != "" {
			return "the value of " + named("NAME", s.name)
		}
	case "body.secret":
		return "--secret"
	case "body.description":
		return "--description"
	case "body.inherits":
		return "--inherits"
	}
	if rest, ok := strings.CutPrefix(loc, "body."); ok && s.bulk {
		name, field, _ := strings.Cut(rest, ".")
		switch field {
		case "":
			return named("NAME", name)
		case "value":
			return "the value of " + named("NAME", name)
		default:
			return named("NAME", name) + " " + field
		}
	}
	return loc
}
