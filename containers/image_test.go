package containers

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseImage(t *testing.T) {
	digest := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name, in             string
		want                 string // String()
		pull, unpacked, file string
		wantErr              string
	}{
		{name: "reana image", in: "reanahub/reana-env-root6:6.18.04",
			want:     "registry.hub.docker.com/reanahub/reana-env-root6:6.18.04",
			pull:     "docker://docker.io/reanahub/reana-env-root6:6.18.04",
			unpacked: "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/reanahub/reana-env-root6:6.18.04",
			file:     "registry.hub.docker.com_reanahub_reana-env-root6:6.18.04"},
		{name: "docker scheme official image", in: "docker://python:3.12-slim",
			want:     "registry.hub.docker.com/library/python:3.12-slim",
			pull:     "docker://docker.io/library/python:3.12-slim",
			unpacked: "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/python:3.12-slim",
			file:     "registry.hub.docker.com_library_python:3.12-slim"},
		{name: "docker.io spelled out", in: "docker.io/library/debian:12-slim",
			want: "registry.hub.docker.com/library/debian:12-slim", pull: "docker://docker.io/library/debian:12-slim"},
		{name: "registry-1 alias", in: "registry-1.docker.io/debian:12-slim",
			want: "registry.hub.docker.com/library/debian:12-slim"},
		{name: "no tag means latest", in: "ubuntu", want: "registry.hub.docker.com/library/ubuntu:latest"},
		{name: "other registry", in: "registry.example.org/x/y:tag",
			want: "registry.example.org/x/y:tag", pull: "docker://registry.example.org/x/y:tag",
			unpacked: "/cvmfs/unpacked.cern.ch/registry.example.org/x/y:tag"},
		{name: "registry with port keeps single component", in: "localhost:5000/app",
			want: "localhost:5000/app:latest"},
		{name: "gitlab registry", in: "gitlab-registry.cern.ch/group/project/image:v1",
			want: "gitlab-registry.cern.ch/group/project/image:v1"},
		{name: "digest", in: "alpine@" + digest, want: "registry.hub.docker.com/library/alpine@" + digest},
		{name: "sif path", in: "/images/root.sif", want: "/images/root.sif"},
		{name: "unpacked dir", in: "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/debian:12-slim/",
			want: "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/debian:12-slim"},
		{name: "empty", in: " ", wantErr: "names no environment image"},
		{name: "relative sif", in: "images/root.sif", wantErr: "absolute path"},
		{name: "other scheme", in: "library://alpine", wantErr: "only docker://"},
		{name: "upper case repository", in: "Reanahub/Env", wantErr: "not a valid repository"},
		{name: "bad tag", in: "debian:-x", wantErr: "bad tag"},
		{name: "bad digest", in: "debian@sha256:xyz", wantErr: "digest"},
		{name: "shell characters", in: "debian;rm -rf /", wantErr: "not a valid repository"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ParseImage(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, img.String())
			if tc.pull != "" {
				require.Equal(t, tc.pull, img.PullURI())
			}
			if tc.unpacked != "" {
				require.Equal(t, tc.unpacked, img.UnpackedPath("/cvmfs/unpacked.cern.ch"))
			}
			if tc.file != "" {
				require.Equal(t, tc.file, img.CacheName())
			}
		})
	}
}
