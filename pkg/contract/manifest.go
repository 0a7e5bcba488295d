package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strconv"

	"github.com/goccy/go-yaml"
)

// Compatibility is what a version declares about itself against the version
// listed before it in the manifest, in schema-registry terms.
type Compatibility string

const (
	// Backward: the new version can read data written with the previous one.
	Backward Compatibility = "backward"
	// Forward: the previous version can read data written with the new one.
	Forward Compatibility = "forward"
	// Full: both backward and forward.
	Full Compatibility = "full"
	// None: no promise; the manifest must give a reason.
	None Compatibility = "none"
)

// manifest is the decoded manifest.yaml of one contract.
type manifest struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Canonical   string            `yaml:"canonical"`
	Versions    []manifestVersion `yaml:"versions"`
}

type manifestVersion struct {
	Name           string   `yaml:"name"`
	SHA256         string   `yaml:"sha256"`
	SourceVersions []string `yaml:"source_versions"`
	// Retired: no source version routes to it any more (a later version
	// reads what the sender sends); kept for compatibility checks and
	// for its fixtures, which still upcast to the canonical version.
	Retired       bool          `yaml:"retired"`
	Compatibility Compatibility `yaml:"compatibility"`
	Reason        string        `yaml:"reason"`
	Notes         string        `yaml:"notes"`
}

var (
	// namePart is one half of a contract name: provider or type.
	namePart = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	// versionName is a contract version name: v1, v2, ...
	versionName = regexp.MustCompile(`^v[1-9][0-9]*$`)
	// sourceVersionChars keeps source version patterns printable and short.
	sourceVersionChars = regexp.MustCompile(`^[A-Za-z0-9._*?\[\]\-^!]{1,64}$`)
)

// parseManifest decodes and checks a manifest read from file (its path in the
// FS, "<provider>/<type>/manifest.yaml").
func parseManifest(file string, b []byte) (*manifest, error) {
	var m manifest
	if err := yaml.UnmarshalWithOptions(b, &m, yaml.DisallowUnknownField()); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", file, ErrManifest, err)
	}
	if err := m.validate(path.Dir(file)); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", file, ErrManifest, err)
	}
	return &m, nil
}

// validate checks the rules that need no schema: dir is the manifest's
// directory, which must equal the contract name.
func (m *manifest) validate(dir string) error {
	if m.Name == "" {
		return fmt.Errorf("name is required")
	}
	if m.Name != dir {
		return fmt.Errorf("name %q does not match its directory %q", m.Name, dir)
	}
	provider, typ := path.Split(m.Name)
	provider = path.Clean(provider)
	if !namePart.MatchString(provider) || !namePart.MatchString(typ) {
		return fmt.Errorf("name %q must be <provider>/<type>, each matching %s", m.Name, namePart)
	}
	if len(m.Versions) == 0 {
		return fmt.Errorf("no versions")
	}
	exact := make(map[string]string) // exact source version → contract version
	prev := 0
	canonical := false
	for i, v := range m.Versions {
		if !versionName.MatchString(v.Name) {
			return fmt.Errorf("versions[%d]: name %q must be v<N>", i, v.Name)
		}
		n, _ := strconv.Atoi(v.Name[1:])
		if n <= prev {
			return fmt.Errorf("versions[%d]: %s listed after v%d: list versions oldest first, each once", i, v.Name, prev)
		}
		prev = n
		if v.Name == m.Canonical {
			canonical = true
		}
		switch {
		case v.Retired && len(v.SourceVersions) > 0:
			return fmt.Errorf("%s: retired, yet it lists source_versions: a retired version routes nothing (give them to the version that reads them now)", v.Name)
		case v.Retired && v.Name == m.Canonical:
			return fmt.Errorf("%s: the canonical version cannot be retired", v.Name)
		case !v.Retired && len(v.SourceVersions) == 0:
			return fmt.Errorf("%s: source_versions is empty: no envelope schema_version would route to it (retired: true if that is meant)", v.Name)
		}
		for _, sv := range v.SourceVersions {
			if !sourceVersionChars.MatchString(sv) {
				return fmt.Errorf("%s: source version %q: use letters, digits, . _ - and glob characters, at most 64", v.Name, sv)
			}
			if _, err := path.Match(sv, ""); err != nil {
				return fmt.Errorf("%s: source version %q: %v", v.Name, sv, err)
			}
			if isGlob(sv) {
				continue
			}
			if other, dup := exact[sv]; dup {
				return fmt.Errorf("source version %q is listed by both %s and %s", sv, other, v.Name)
			}
			exact[sv] = v.Name
		}
		switch {
		case i == 0 && v.Compatibility != "":
			return fmt.Errorf("%s: compatibility declared on the first version: there is nothing before it", v.Name)
		case i == 0:
		case v.Compatibility == "":
			return fmt.Errorf("%s: compatibility with %s is required: backward, forward, full or none", v.Name, m.Versions[i-1].Name)
		case v.Compatibility == None && v.Reason == "":
			return fmt.Errorf("%s: compatibility none needs a reason", v.Name)
		case v.Compatibility != Backward && v.Compatibility != Forward && v.Compatibility != Full && v.Compatibility != None:
			return fmt.Errorf("%s: compatibility %q: want backward, forward, full or none", v.Name, v.Compatibility)
		}
		if v.SHA256 != "" {
			if _, err := hex.DecodeString(v.SHA256); err != nil || len(v.SHA256) != 64 {
				return fmt.Errorf("%s: sha256 %q is not 64 hex digits", v.Name, v.SHA256)
			}
		}
	}
	if m.Canonical == "" {
		return fmt.Errorf("canonical is required")
	}
	if !canonical {
		return fmt.Errorf("canonical %q is not one of the versions", m.Canonical)
	}
	return nil
}

// isGlob reports whether a source version is a path.Match pattern rather
// than an exact string.
func isGlob(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

// schemaSHA256 is the hex SHA-256 of an .avsc file with CRLF line endings
// normalised to LF, so a checkout's line-ending conversion is not an edit.
func schemaSHA256(b []byte) string {
	sum := sha256.Sum256(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
	return hex.EncodeToString(sum[:])
}
