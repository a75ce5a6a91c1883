package catalog_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

func TestParseProxyPaths(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: an error
	}{
		{"/api/v1/books", []string{"/api/v1/books"}},
		{"/api/v1/books/", []string{"/api/v1/books"}},
		{" /b , /a,/b,", []string{"/a", "/b"}},
		{"/", []string{"/"}},
		{"api/v1/books", nil},  // not absolute
		{"http://x/api", nil},  // a URL, not a path
		{"/api/../admin", nil}, // dot segment
		{"/api//books", nil},   // empty segment
		{"/api?x=1", nil},      // query
		{"/a b", nil},          // space
		{"/caf\u00e9", nil},    // non-ASCII
		{"", nil},              // nothing
		{" , ", nil},           // nothing either
		{"/" + strings.Repeat("a", 300), nil},
		{strings.Repeat("/a", catalog.MaxProxyPaths+1)[1:], nil},
	}
	for _, tt := range tests {
		got, err := catalog.ParseProxyPaths(tt.in)
		if tt.want == nil {
			if err == nil || !errors.Is(err, catalog.ErrInvalid) {
				t.Errorf("ParseProxyPaths(%q) = %v, %v; want an ErrInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseProxyPaths(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	many := make([]string, catalog.MaxProxyPaths+1)
	for i := range many {
		many[i] = "/p" + strings.Repeat("x", i)
	}
	if _, err := catalog.ParseProxyPaths(strings.Join(many, ",")); err == nil {
		t.Errorf("%d paths accepted, want at most %d", len(many), catalog.MaxProxyPaths)
	}
}

func TestNormalizeProxyHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"books.example.test", "books.example.test"},
		{"Books.Example.TEST.", "books.example.test"},
		{"my_svc.internal", "my_svc.internal"},
		{"books.example.test:8080", ""},
		{"http://books", ""},
		{"-a.b", ""},
		{"a..b", ""},
		{"", ""},
		{"\u212Aube", ""},
	}
	for _, tt := range tests {
		got, err := catalog.NormalizeProxyHost(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeProxyHost(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeProxyHost(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestProxyRouteStoredAndCompared(t *testing.T) {
	cat := catalog.New()
	inst := apiInst("books-1", "books-ms", 8080)
	inst.Proxy = &catalog.ProxyRoute{Paths: []string{"/api/v1/books"}, Strip: true}
	idx, err := cat.RegisterInstance(inst)
	if err != nil {
		t.Fatal(err)
	}
	same := apiInst("books-1", "books-ms", 8080)
	same.Proxy = &catalog.ProxyRoute{Paths: []string{"/api/v1/books"}, Strip: true}
	if idx2, err := cat.RegisterInstance(same); err != nil || idx2 != idx {
		t.Errorf("same route again: index %d, %v; want %d unchanged", idx2, err, idx)
	}
	moved := apiInst("books-1", "books-ms", 8080)
	moved.Proxy = &catalog.ProxyRoute{Paths: []string{"/api/v2/books"}}
	if idx3, err := cat.RegisterInstance(moved); err != nil || idx3 == idx {
		t.Errorf("changed route: index %d, %v; want a new index", idx3, err)
	}
	var seen []string
	cat.EachService(func(svc string, _ uint64, insts []*catalog.Instance) {
		for _, i := range insts {
			seen = append(seen, svc+" "+strings.Join(i.Proxy.Paths, ","))
		}
	})
	if !slices.Equal(seen, []string{"books-ms /api/v2/books"}) {
		t.Errorf("EachService saw %v", seen)
	}

	bad := apiInst("books-2", "books-ms", 8080)
	bad.Proxy = &catalog.ProxyRoute{Paths: []string{"api"}}
	if _, err := cat.RegisterInstance(bad); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("relative path stored: %v", err)
	}
	bad.Proxy = &catalog.ProxyRoute{}
	if _, err := cat.RegisterInstance(bad); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("empty route stored: %v", err)
	}
}
