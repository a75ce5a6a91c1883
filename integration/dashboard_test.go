//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"
)

// The dashboard in a real browser (Debian's chromium, headless, driven by
// chromedp): it lists a container the test starts, shows it gone after
// docker rm -f without a reload, and answers "why this answer" with the
// rule. The screenshot is the README's picture when SVCDNS_SCREENSHOT
// names where to write it (make screenshot); else it goes to a temp dir.

// requireChromium returns chromium's path; it skips locally and fails
// under CI=true when there is none.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and no chromium (apt-get install chromium)")
	}
	t.Skip("no chromium")
	return ""
}

// browser starts a headless chromium for the test.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1400, 1000),
		chromedp.DisableGPU,
		chromedp.NoSandbox,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// rowJS is a script true while the services table has a row for the
// container named name.
func rowJS(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#services tr.inst td.ctr")].some(td => td.textContent === %q)`, name)
}

// waitJS waits up to 15 s for a script to be true in the page.
func waitJS(expr string) chromedp.Action[chromedp.Void] { return waitJSFor(15*time.Second, expr) }

func waitJSFor(d time.Duration, expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Action[chromedp.Void](func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d))(ctx, t)
		return chromedp.Void{}, err
	})
}

func TestDashboardInBrowser(t *testing.T) {
	chromium := requireChromium(t)
	s := startWatching(t, "")
	ctx := browser(t, chromium)

	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+s.HTTP+"/"),
		chromedp.WaitVisible(chromedp.CSS("#services")),
		// The event stream is up; a marker tells a reload apart.
		waitJS(`document.getElementById("live").classList.contains("on")`),
		chromedp.Evaluate[chromedp.Void](`window.__noReload = 1`),
	); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}

	// Two replicas of books-ms and an API instance; some queries for the chart.
	id1 := runContainer(t, "dash-books-1", "--label", "SERVICE_TAGS=v1,blue", "-p", "127.0.0.1::8080", imgBooks)
	runContainer(t, "dash-books-2", "--label", "SERVICE_TAGS=v2", imgBooks)
	s.register(t, "billing-1", apiInstance{Service: "billing", Address: "10.0.8.21", Port: 9000, Tags: []string{"eu"}})
	name1 := namePrefix + "dash-books-1"
	if err := chromedp.Do(ctx, waitJS(rowJS(name1)), waitJS(rowJS(namePrefix+"dash-books-2"))); err != nil {
		t.Fatalf("the page never listed the containers it was not reloaded for: %v", err)
	}
	// Queries for the chart, about 20 a second, a quarter of them for a
	// name that does not exist, until the screenshot (45 s at most).
	qctx, stopQueries := context.WithTimeout(context.Background(), 45*time.Second)
	defer stopQueries()
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-qctx.Done():
				return
			case <-tick.C:
			}
			name := "books-ms.service.local."
			if i%4 == 3 {
				name = "nope.service.local."
			}
			_, _ = ask(s.DNS, name, dns.TypeSRV)
		}
	}()

	// The search box filters as one types, without a request: by a tag
	// here, then cleared.
	svcShown := func(name string) string {
		return fmt.Sprintf(`document.querySelector('#services tbody.svc[data-service=%q]') !== null`, name)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#search"), "eu"),
		waitJS(svcShown("billing")+" && !("+svcShown("books-ms")+")"),
		chromedp.Evaluate[chromedp.Void](`(s => { s.value = ""; s.dispatchEvent(new Event("input")); })(document.getElementById("search"))`),
		waitJS(svcShown("billing")+" && "+svcShown("books-ms")),
	); err != nil {
		t.Fatalf("the search box did not filter the services: %v", err)
	}

	// Why this answer: a client on the container's own network gets its
	// address there.
	client := containerIP(t, id1, "")
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#ex-name"), "books-ms.service.local"),
		chromedp.SetValue(chromedp.CSS("#ex-type"), "SRV"),
		chromedp.SetValue(chromedp.CSS("#ex-client"), client),
		chromedp.Click(chromedp.CSS("#explain-form button")),
		chromedp.WaitVisible(chromedp.CSS("#explain-result .rule-shared-network")),
	); err != nil {
		t.Fatalf("explain through the page: %v", err)
	}
	rule, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#explain-result .rule-shared-network")))
	if err != nil {
		t.Fatal(err)
	}
	if rule != "shared-network" {
		t.Errorf("explain rule %q, want shared-network", rule)
	}

	// Let two query-rate samples come in (one every 5 s), then take the
	// picture.
	if err := chromedp.Do(ctx, waitJSFor(30*time.Second, `new Set([...document.querySelectorAll("#chart rect")].map(r => r.getAttribute("x"))).size >= 2`)); err != nil {
		t.Fatalf("no query rates on the chart: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	stopQueries()
	out := os.Getenv("SVCDNS_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))

	// Without JavaScript the page is the same table, rendered by the
	// server, and the search box is a form: ?q= filters services (here by
	// an instance's ip:port).
	noJS, cancelNoJS := chromedp.NewContext(ctx)
	defer cancelNoJS()
	var static string
	if err := chromedp.Do(noJS,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}),
		chromedp.Navigate("http://"+s.HTTP+"/?q=10.0.8.21:9000"),
		chromedp.WaitVisible(chromedp.CSS("#services")),
	); err != nil {
		t.Fatalf("the page without JavaScript: %v", err)
	}
	static, err = chromedp.Run(noJS, chromedp.OuterHTML(chromedp.CSS("#services")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(static, `data-service="billing"`) || !strings.Contains(static, "billing-1") || strings.Contains(static, `data-service="books-ms"`) {
		t.Errorf("static page filtered by ?q=10.0.8.21:9000 shows:\n%s", static)
	}
	if live, _ := chromedp.Run(noJS, chromedp.OuterHTML(chromedp.CSS("#live-text"))); !strings.Contains(live, ">static page<") {
		t.Errorf("without JavaScript the page says %q, want \"static page\"", live)
	}
	cancelNoJS()

	// Gone without a reload, and logged as removed.
	mustDocker(t, "rm", "-f", name1)
	if err := chromedp.Do(ctx,
		waitJS("!("+rowJS(name1)+")"),
		waitJS(fmt.Sprintf(`[...document.querySelectorAll("#changes tr.chg-removed")].some(tr => tr.textContent.includes(%q))`, name1)),
	); err != nil {
		t.Fatalf("the removed container stayed on the page: %v", err)
	}
	reloaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload !== 1`))
	if err != nil {
		t.Fatal(err)
	}
	if reloaded {
		t.Error("the page reloaded; want live updates without one")
	}
}
