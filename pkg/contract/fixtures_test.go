package contract

import (
	"io/fs"
	"testing"

	"github.com/inletdev/inlet/schemas/contracts"
)

// seedFixtures adds every shipped fixture payload to a fuzz corpus, as
// (i, payload) with i its place in the list: the fuzz targets use i to pick
// a contract version.
func seedFixtures(f *testing.F) {
	f.Helper()
	files, err := fs.Glob(contracts.FS, "*/*/fixtures/*/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no shipped fixtures (%v)", err)
	}
	for i, file := range files {
		b, err := fs.ReadFile(contracts.FS, file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
}

// SeedFixtures is seedFixtures for the external test package.
var SeedFixtures = seedFixtures
