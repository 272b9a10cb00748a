package envy_test

import (
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// TestLabelsThatLookLikeOthersAreRefused: a token's name and owner name
// the actor everywhere; none may pass for another by a space at an end,
// an invisible character or a space that is not U+0020.
func TestLabelsThatLookLikeOthersAreRefused(t *testing.T) {
	for _, ok := range []string{"admin", "ci deploy", "équipe-web", "team/web", "a", strings.Repeat("x", envy.MaxLabel), "名前"} {
		if fe := envy.ValidateLabel("body.owner", "invalid_owner", "owner", ok); fe != nil {
			t.Errorf("%q refused: %v", ok, fe)
		}
	}
	for _, bad := range []string{
		"", strings.Repeat("x", envy.MaxLabel+1), "admin ", " admin", "admin\t", "\u00a0admin",
		"ad\u200bmin", // zero-width space (Cf)
		"admin\u200e", // left-to-right mark (Cf)
		"ad\u00admin", // soft hyphen (Cf)
		"ad\u2028min", // line separator (Zl)
		"ad\u2029min", // paragraph separator (Zp)
		"ad\u00a0min", // no-break space (Zs)
		"ad\u3000min", // ideographic space (Zs)
		"ad\x7fmin",   // DEL (Cc)
		"ad\x00min",   // NUL (Cc)
		"ad\u0085min", // NEL (Cc)
		"ad\ufeffmin", // BOM (Cf)
		"ad\xffmin",   // not UTF-8
		"admin\u2060", // word joiner (Cf)
	} {
		fe := envy.ValidateLabel("body.owner", "invalid_owner", "owner", bad)
		if fe == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if fe.Loc != "body.owner" || fe.Type != "invalid_owner" || !strings.HasPrefix(fe.Msg, "owner ") {
			t.Errorf("%q: refusal %+v does not name the field", bad, *fe)
		}
	}
}
