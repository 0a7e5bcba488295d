package contract

import (
	"io/fs"
	"testing"

	"github.com/inletdev/inlet/schemas/contracts"
)

// seedCorpus seeds a fuzz target that picks one of n contract versions (or
// plans) by its first argument: every shipped fixture payload once, as
// (i, payload) with i its place in the fixture list, and each extra payload
// once for every one of the n.
func seedCorpus(f *testing.F, n int, extra ...string) {
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
	for _, s := range extra {
		for i := range n {
			f.Add(uint8(i), []byte(s))
		}
	}
}

// SeedCorpus is seedCorpus for the external test package.
var SeedCorpus = seedCorpus
