package containers

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// HubRegistry is the name Docker Hub images carry in the CVMFS
// unpacked.cern.ch layout, whatever spelling the step used.
const HubRegistry = "registry.hub.docker.com"

// hubAliases are the spellings of Docker Hub that mean HubRegistry.
var hubAliases = map[string]bool{
	"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true, HubRegistry: true,
}

// Image is a step's environment, parsed. Exactly one of Path and
// Repository is set.
type Image struct {
	// Path is an absolute path to a SIF file or an unpacked image
	// directory, used as it is.
	Path string
	// Registry, Repository, Tag and Digest name a registry image, with
	// Docker Hub normalised to HubRegistry and "library/" for official
	// images. Tag is "latest" when neither tag nor digest was given.
	Registry   string
	Repository string
	Tag        string
	Digest     string // "sha256:..."; empty when none was given
}

var (
	// From the distribution reference grammar, simplified: lower-case path
	// components separated by '/', each of [a-z0-9] runs joined by '.',
	// '_', '__' or '-'.
	repoComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	hostPattern   = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]+)?$`)
)

// ParseImage reads a REANA environment string: a Docker reference with or
// without "docker://" (reanahub/reana-env-root6:6.18.04,
// docker.io/library/debian:12-slim, registry.example.org/x/y:tag), or an
// absolute path to a SIF file or an unpacked image directory.
func ParseImage(environment string) (Image, error) {
	s := strings.TrimSpace(environment)
	if s == "" {
		return Image{}, fmt.Errorf("the step names no environment image")
	}
	if strings.HasPrefix(s, "/") {
		if strings.Contains(s, "\n") {
			return Image{}, fmt.Errorf("image path %q contains a newline", s)
		}
		return Image{Path: filepath.Clean(s)}, nil
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if scheme != "docker" {
			return Image{}, fmt.Errorf("image %q: only docker:// images, SIF files and unpacked directories are supported", s)
		}
		s = rest
	} else if strings.HasSuffix(s, ".sif") {
		// Relative to what? The daemon does not know where the step's
		// command will look, so it asks for the path in full.
		return Image{}, fmt.Errorf("image %q: a SIF file must be given as an absolute path", s)
	}
	img := Image{Registry: HubRegistry}
	if name, digest, ok := strings.Cut(s, "@"); ok {
		if !digestPattern.MatchString(digest) {
			return Image{}, fmt.Errorf("image %q: digest %q is not sha256:<64 hex digits>", environment, digest)
		}
		s, img.Digest = name, digest
	}
	parts := strings.Split(s, "/")
	// The first component is a registry host when it looks like one, as
	// Docker decides it.
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if !hostPattern.MatchString(parts[0]) {
			return Image{}, fmt.Errorf("image %q: bad registry host %q", environment, parts[0])
		}
		img.Registry = strings.ToLower(parts[0])
		if hubAliases[img.Registry] {
			img.Registry = HubRegistry
		}
		parts = parts[1:]
	}
	last := parts[len(parts)-1]
	if name, tag, ok := strings.Cut(last, ":"); ok {
		if !tagPattern.MatchString(tag) {
			return Image{}, fmt.Errorf("image %q: bad tag %q", environment, tag)
		}
		parts[len(parts)-1], img.Tag = name, tag
	}
	for _, p := range parts {
		if !repoComponent.MatchString(p) {
			return Image{}, fmt.Errorf("image %q: %q is not a valid repository name component", environment, p)
		}
	}
	if img.Registry == HubRegistry && len(parts) == 1 {
		parts = append([]string{"library"}, parts...)
	}
	img.Repository = strings.Join(parts, "/")
	if img.Tag == "" && img.Digest == "" {
		img.Tag = "latest"
	}
	return img, nil
}

// IsPath reports whether the image is a local path rather than a
// registry reference.
func (i Image) IsPath() bool { return i.Path != "" }

// String is the normalised name: the path, or registry/repository:tag
// (and @digest when given).
func (i Image) String() string {
	if i.IsPath() {
		return i.Path
	}
	return i.Registry + "/" + i.nameTag()
}

func (i Image) nameTag() string {
	s := i.Repository
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest
	}
	return s
}

// PullURI is what `apptainer pull` is given. Docker Hub is spelled
// docker.io there, the name container tooling resolves to the Hub's API.
func (i Image) PullURI() string {
	reg := i.Registry
	if reg == HubRegistry {
		reg = "docker.io"
	}
	return "docker://" + reg + "/" + i.nameTag()
}

// UnpackedPath is where the image lives under an unpacked root in the
// CVMFS unpacked.cern.ch layout: <root>/<registry>/<repository>:<tag>.
func (i Image) UnpackedPath(root string) string {
	return filepath.Join(root, i.Registry, i.nameTag())
}

// CacheName is the image's file name stem in the site image cache: the
// normalised name with '/' replaced by '_', readable enough for an admin
// to place a SIF there by hand (registry.hub.docker.com_library_debian:12-slim.sif).
func (i Image) CacheName() string {
	return strings.ReplaceAll(i.Registry+"/"+i.nameTag(), "/", "_")
}
