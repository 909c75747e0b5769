package registry

import (
	"errors"
	"strings"
)

// challengeParam is one auth-param of a WWW-Authenticate challenge, in the order it came.
type challengeParam struct{ key, value string }

var errChallenge = errors.New("malformed challenge")

// parseChallenge parses `scheme k=v, k="quoted \"v\""` (RFC 7235 section 2.1, one challenge).
func parseChallenge(s string) (scheme string, params []challengeParam, ok bool) {
	s = strings.TrimSpace(s)
	sp := strings.IndexAny(s, " \t")
	if sp < 0 {
		return s, nil, s != ""
	}
	scheme, rest := s[:sp], s[sp:]
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return scheme, params, true
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return "", nil, false
		}
		key := strings.TrimSpace(rest[:eq])
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var value string
		var err error
		value, rest, err = challengeValue(rest)
		if err != nil || key == "" || strings.ContainsAny(key, " \t\",") {
			return "", nil, false
		}
		params = append(params, challengeParam{key, value})
	}
}

func challengeValue(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexByte(s, ',')
		if end < 0 {
			end = len(s)
		}
		return strings.TrimSpace(s[:end]), s[end:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", "", errChallenge
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errChallenge
}

func formatChallenge(scheme string, params []challengeParam) string {
	var b strings.Builder
	b.WriteString(scheme)
	for i, p := range params {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(p.key)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p.value))
		b.WriteByte('"')
	}
	return b.String()
}
