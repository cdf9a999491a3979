package drill

import (
	"bytes"
	"encoding/xml"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/rcapi"
)

func TestTimelineRendersRolesFaultsAndSegments(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	r := &Report{Scenario: "unit", Verdict: "pass", StartedAt: t0, DurationMS: 20000,
		Roles: []RoleSample{{Node: "a", Role: "leader", Epoch: 5, At: at(0)}, {Node: "b", Role: "standby", At: at(0)},
			{Node: "a", Role: "down", At: at(5)}, {Node: "b", Role: "leader", Epoch: 9, At: at(9)}},
		Markers: []Marker{{Label: "kill a", At: at(5)}},
	}
	cmd := func(seq int64, action, seg, node string, epoch int64, s float64) rcapi.LedgerEntry {
		return rcapi.LedgerEntry{Seq: seq, Kind: "command", Result: rcapi.ResultApplied, ReceivedAt: at(s),
			Command: &rcapi.Command{ID: action + seg, Epoch: epoch, Node: node, Action: action, EngagementID: "e", SegmentID: seg}}
	}
	l := rcapi.Ledger{Entries: []rcapi.LedgerEntry{
		cmd(1, "start", "e/u1", "a", 5, 1), cmd(2, "start", "e/u2", "a", 5, 2), cmd(3, "stop", "e/u1", "b", 9, 10),
	}}
	var buf bytes.Buffer
	if err := renderTimeline(&buf, r, l); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	i, j := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if i < 0 || j < 0 {
		t.Fatal("no svg in the page")
	}
	var doc struct {
		Rects []struct {
			Fill  string `xml:"fill,attr"`
			Title string `xml:"title"`
		} `xml:"rect"`
		Lines []struct{} `xml:"line"`
	}
	if err := xml.Unmarshal([]byte(page[i:j+len("</svg>")]), &doc); err != nil {
		t.Fatalf("the svg is not well-formed: %v", err)
	}
	var roles, segs int
	for _, r := range doc.Rects {
		switch {
		case strings.HasPrefix(r.Title, "e/u"):
			segs++
		case strings.Contains(r.Title, "epoch"):
			roles++
		}
	}
	if roles != 4 || segs != 3 || len(doc.Lines) != 1 {
		t.Fatalf("got %d role bars, %d segment bars/caps, %d markers; want 4, 3, 1\n%s", roles, segs, len(doc.Lines), page)
	}
	if !strings.Contains(page, "started by a, stopped by b") {
		t.Error("segment handed over between nodes is not labelled")
	}
	// Where a headless Chromium exists, it must render the page.
	if bin, err := exec.LookPath("chromium"); err == nil {
		dir := t.TempDir()
		p := filepath.Join(dir, "t.html")
		if err := WriteTimeline(p, r, l); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--screenshot="+filepath.Join(dir, "t.png"), "file://"+p).CombinedOutput()
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, out)
		}
	} else {
		t.Log("no chromium on this machine: the page was validated as XML only")
	}
}
