package catalog_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/svcdns/svcdns/catalog"
)

// labelRE is RFC 1123's label, written independently of ValidLabel.
var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// asciiLower lower-cases A-Z only, unlike strings.ToLower.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// FuzzNormalizeLabel checks NormalizeLabel and ValidLabel against an
// independent definition: a name is accepted exactly when its ASCII
// lower-casing is an RFC 1123 label, and what comes back is that
// lower-casing; everything else is ErrInvalid with a short message.
func FuzzNormalizeLabel(f *testing.F) {
	for _, s := range []string{
		"", "-a", "a-", strings.Repeat("a", 63), strings.Repeat("a", 64), "v1.books-ms", "\x00",
		"\u212A", "\u212Aube", "Books-MS", "_tcp", "books-ms", "a", "-", ".", "a..b", "xn--bcher-kva",
		"\xff\xfe", "\u0130", "\u017F", "A\u0301", strings.Repeat("\u212A", 40), strings.Repeat("A", 63) + "\u212A",
		" books", "books\n", "b\x00oks", "*", "@",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lower := asciiLower(s)
		valid := labelRE.MatchString(lower)

		if got := catalog.ValidLabel(s); got != labelRE.MatchString(s) {
			t.Fatalf("ValidLabel(%q) = %v, RFC 1123 says %v", s, got, !got)
		}

		got, err := catalog.NormalizeLabel(s)
		if valid != (err == nil) {
			t.Fatalf("NormalizeLabel(%q) = %q, %v; want accepted = %v", s, got, err, valid)
		}
		if err != nil {
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("NormalizeLabel(%q) error %v does not wrap ErrInvalid", s, err)
			}
			if got != "" {
				t.Fatalf("NormalizeLabel(%q) = %q with an error", s, got)
			}
			if msg := err.Error(); len(msg) > 400 || !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\n\r") {
				t.Fatalf("NormalizeLabel(%q) error %q: longer than 400 bytes, not UTF-8, or with NUL or newline", s, msg)
			}
			return
		}
		if got != lower || !catalog.ValidLabel(got) {
			t.Fatalf("NormalizeLabel(%q) = %q, want %q", s, got, lower)
		}
		if again, err := catalog.NormalizeLabel(got); err != nil || again != got {
			t.Fatalf("NormalizeLabel not idempotent on %q: %q, %v", got, again, err)
		}
	})
}
