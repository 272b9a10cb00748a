package http

import (
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
)

// The resolved env is the hot path: a deploy starts thousands of
// workloads that each read it. It is encoded by hand, into a pooled
// buffer, to the same bytes that encoding/json gives envJSON (names are
// already sorted), without reflection or a map; so is a var list. Tests
// compare both with encoding/json.

var envBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func writeEnvJSON(w http.ResponseWriter, env envy.Env) {
	bp := envBufs.Get().(*[]byte)
	b := appendEnvJSON((*bp)[:0], env)
	wire.WriteBytes(w, wire.ContentTypeJSON, http.StatusOK, b)
	*bp = b
	envBufs.Put(bp)
}

// writeReply writes the reply that read encodes into a pooled buffer (or
// takes from the service's plaintext cache), with its revision as ETag.
func writeReply(w http.ResponseWriter, contentType string, read func(b []byte) (envy.EncodedReply, error)) error {
	bp := envBufs.Get().(*[]byte)
	defer envBufs.Put(bp)
	rep, err := read((*bp)[:0])
	if err != nil {
		return err
	}
	wire.SetETag(w, rep.Revision)
	wire.WriteBytes(w, contentType, http.StatusOK, rep.Body)
	if !rep.Cached {
		*bp = rep.Body[:0] // keep the grown buffer
	}
	return nil
}

func appendEnvJSON(b []byte, env envy.Env) []byte {
	b = append(b, `{"scope":`...)
	b = appendJSONString(b, env.Scope)
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, env.Revision, 10)
	b = append(b, `,"env":{`...)
	for i, v := range env.Vars {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v.Name)
		b = append(b, ':')
		b = appendJSONString(b, v.Value.Reveal())
	}
	b = append(b, `},"secrets":[`...)
	first := true
	for _, v := range env.Vars {
		if v.Secret {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, v.Name)
		}
	}
	return append(b, "]}\n"...)
}

// writeVarListJSON writes a var list, the same bytes as encoding/json
// gives varListJSON: listing a scope's vars is the other hot read.
func writeVarListJSON(w http.ResponseWriter, vl envy.VarList) {
	bp := envBufs.Get().(*[]byte)
	b := appendVarListJSON((*bp)[:0], vl)
	wire.WriteBytes(w, wire.ContentTypeJSON, http.StatusOK, b)
	*bp = b
	envBufs.Put(bp)
}

func appendVarListJSON(b []byte, vl envy.VarList) []byte {
	b = append(b, `{"scope":`...)
	b = appendJSONString(b, vl.Scope)
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, vl.Revision, 10)
	b = append(b, `,"items":[`...)
	for i, v := range vl.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, v.ID)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, v.Name)
		b = append(b, `,"value":`...)
		if v.Value == nil {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, v.Value.Reveal())
		}
		b = append(b, `,"masked_value":`...)
		if v.MaskedValue == nil {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, *v.MaskedValue)
		}
		b = append(b, `,"secret":`...)
		b = strconv.AppendBool(b, v.Secret)
		b = append(b, `,"description":`...)
		b = appendJSONString(b, v.Description)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, v.Version, 10)
		b = append(b, `,"revision":`...)
		b = strconv.AppendInt(b, v.Revision, 10)
		b = append(b, `,"created_at":"`...)
		b = v.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","updated_at":"`...)
		b = v.UpdatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","updated_by":`...)
		b = appendJSONString(b, v.UpdatedBy)
		b = append(b, `,"updated_by_token":`...)
		b = appendJSONString(b, v.UpdatedByToken)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does with HTML escaping off.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
