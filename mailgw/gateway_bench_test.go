package mailgw

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/store"
)

// BenchmarkDeliverBatch files a generated archive in batches of 256 on
// SQLite with durable commits, as `trackerd import` does:
//
//	go test ./mailgw -run '^$' -bench DeliverBatch -benchtime 2000x
func BenchmarkDeliverBatch(b *testing.B) {
	st, err := store.Open(b.Context(), store.Options{Driver: store.DriverSQLite, DSN: filepath.Join(b.TempDir(), "t.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	g := New(st, config.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	raws := testmail.Archive(b.N, 3)
	var size int64
	for _, r := range raws {
		size += int64(len(r))
	}
	b.SetBytes(size / int64(b.N))
	b.ResetTimer()
	for i := 0; i < len(raws); i += 256 {
		batch := make([]Mail, 0, 256)
		for _, r := range raws[i:min(i+256, len(raws))] {
			batch = append(batch, Mail{Raw: r, Source: "import"})
		}
		if _, err := g.DeliverBatch(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
}
