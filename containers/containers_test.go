package containers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
)

func TestExecArgs(t *testing.T) {
	img := Resolved{Path: "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/debian:12-slim"}
	spec := batch.Spec{Workspace: "/home/alice/reana/workflows/w1",
		Env: map[string]string{"REANA_WORKSPACE": "/home/alice/reana/workflows/w1", "REANA_WORKFLOW_UUID": "w1"}}
	launch := []string{img.Path, "/bin/sh", "-c", ShellLauncher, "sh"}
	tail := append(launch, "--")
	cases := []struct {
		name    string
		cfg     Config
		spec    batch.Spec
		want    []string
		wantErr string
	}{
		{name: "defaults", spec: spec, want: append([]string{"apptainer", "exec", "--cleanenv", "--no-home", "--pid",
			"--bind", "/home/alice/reana/workflows/w1:/home/alice/reana/workflows/w1", "--pwd", "/home/alice/reana/workflows/w1"},
			append(launch, "REANA_WORKFLOW_UUID=w1", "REANA_WORKSPACE=/home/alice/reana/workflows/w1", "--")...)},
		{name: "secrets", spec: batch.Spec{Workspace: "/w", JobDir: "/j", Secrets: batch.Secrets{Dir: "/s", Kerberos: true}},
			want: append([]string{"apptainer", "exec", "--cleanenv", "--no-home", "--pid", "--bind", "/w:/w", "--pwd", "/w",
				"--bind", "/j/secrets:/etc/reana/secrets:ro", "--bind", "/j/secrets-env:/etc/reana/env-secrets:ro"},
				append(launch, "KRB5CCNAME=FILE:/etc/reana/secrets/krb5cc", "REANA_SECRETS_DIR=/etc/reana/secrets", "--")...)},
		{name: "site binds and apptainer path", cfg: Config{Apptainer: "/opt/apptainer/bin/apptainer", ExtraBinds: []string{"/cvmfs", "/scratch:/scratch:ro"}},
			spec: batch.Spec{Workspace: "/w"},
			want: append([]string{"/opt/apptainer/bin/apptainer", "exec", "--cleanenv", "--no-home", "--pid", "--bind", "/w:/w", "--pwd", "/w",
				"--bind", "/cvmfs", "--bind", "/scratch:/scratch:ro"}, tail...)},
		// Values pass through the launcher's argv untouched, unlike
		// --env, which Apptainer splits at commas and shell-evaluates.
		{name: "values apptainer would change", spec: batch.Spec{Workspace: "/w", Env: map[string]string{"X": "$HOME a=b,c=d `x` \\"}},
			want: append([]string{"apptainer", "exec", "--cleanenv", "--no-home", "--pid", "--bind", "/w:/w", "--pwd", "/w"},
				append(launch, "X=$HOME a=b,c=d `x` \\", "--")...)},
		{name: "bad variable name", spec: batch.Spec{Workspace: "/w", Env: map[string]string{"1X": "a"}}, wantErr: "1X"},
		{name: "workspace with a colon", spec: batch.Spec{Workspace: "/w:x"}, wantErr: "--bind"},
		{name: "relative workspace", spec: batch.Spec{Workspace: "w"}, wantErr: "absolute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExecArgs(tc.cfg, img, tc.spec)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestExecArgsInJobScript runs a rendered job script whose Runner comes
// from ExecArgs, with an "apptainer" that skips its options and runs what
// follows the image on the host: the command must arrive intact and run
// with bash.
func TestExecArgsInJobScript(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("needs /bin/bash")
	}
	dir := t.TempDir()
	ws, jd, img := filepath.Join(dir, "ws"), filepath.Join(dir, "job"), filepath.Join(dir, "image")
	for _, d := range []string{ws, jd, img} {
		require.NoError(t, os.MkdirAll(d, 0o700))
	}
	fake := filepath.Join(dir, "apptainer")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\nwhile [ \"$1\" != "+jobscript.Quote(img)+" ]; do shift; done\nshift\nexec \"$@\"\n"), 0o700))
	spec := batch.Spec{JobID: "j", Workspace: ws, JobDir: jd, Env: map[string]string{"REANA_WORKSPACE": ws}}
	argv, err := ExecArgs(Config{Apptainer: fake}, Resolved{Path: img}, spec)
	require.NoError(t, err)
	script, err := jobscript.Render(spec, jobscript.Options{RedirectOutput: true, Runner: argv})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.ScriptFile), []byte(script), 0o700))
	command := `echo "shell=${BASH_VERSION:+bash} it's $((6*7)) ws=${REANA_WORKSPACE##*/}"; exit 4`
	require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.CommandFile), []byte(command), 0o600))
	_ = exec.Command("/bin/sh", filepath.Join(jd, asuser.ScriptFile)).Run()
	out, err := os.ReadFile(filepath.Join(jd, asuser.OutputFile))
	require.NoError(t, err)
	require.Equal(t, "shell=bash it's 42 ws=ws\n", string(out), "the launcher set the step's variables")
	code, err := os.ReadFile(filepath.Join(jd, asuser.ExitFile))
	require.NoError(t, err)
	require.Equal(t, "4", strings.TrimSpace(string(code)))
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "full", cfg: Config{Apptainer: "/usr/bin/apptainer", ImageCache: "{home}/.cache/reana-images",
			UnpackedRoots: []string{"/cvmfs/unpacked.cern.ch"}, Order: []string{"unpacked", "cache", "pull"},
			ExtraBinds: []string{"/cvmfs", "/eos:/eos:ro"}}},
		{name: "relative apptainer path", cfg: Config{Apptainer: "bin/apptainer"}, wantErr: "apptainer path"},
		{name: "relative cache", cfg: Config{ImageCache: "cache"}, wantErr: "image cache"},
		{name: "pull cache", cfg: Config{ImageCache: "/c", PullCache: "/scratch/{user}/apptainer"}},
		{name: "relative pull cache", cfg: Config{PullCache: "apptainer"}, wantErr: "pull cache"},
		{name: "pull cache naming the image cache", cfg: Config{PullCache: "{cache}/x"}, wantErr: "pull cache"},
		{name: "relative root", cfg: Config{UnpackedRoots: []string{"cvmfs"}}, wantErr: "unpacked root"},
		{name: "unknown source", cfg: Config{Order: []string{"cache", "registry"}}, wantErr: "unknown source"},
		{name: "duplicate source", cfg: Config{Order: []string{"cache", "cache"}}, wantErr: "twice"},
		{name: "pull not last", cfg: Config{Order: []string{"pull", "cache"}}, wantErr: "last"},
		{name: "bind with comma", cfg: Config{ExtraBinds: []string{"/a,/b"}}, wantErr: "no commas"},
		{name: "bind relative", cfg: Config{ExtraBinds: []string{"/a:b"}}, wantErr: "absolute"},
		{name: "bind option", cfg: Config{ExtraBinds: []string{"/a:/b:rx"}}, wantErr: "ro or rw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			require.ErrorContains(t, errs[0], tc.wantErr)
		})
	}
}

func TestCanPull(t *testing.T) {
	require.True(t, Config{AllowPull: true, ImageCache: "/c"}.CanPull())
	require.False(t, Config{AllowPull: true}.CanPull(), "nowhere to pull to")
	require.False(t, Config{ImageCache: "/c"}.CanPull())
	require.False(t, Config{AllowPull: true, ImageCache: "/c", Order: []string{"cache", "unpacked"}}.CanPull())
}
