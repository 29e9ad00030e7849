package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

// The secrets API, as reana-client 0.9.6 uses it. The values go straight
// to the user's own helper, which writes them into the user's secret
// directory; the store keeps names, types and times only, and nothing of
// a value is logged.
//
// The contract lists 201, 403, 409 and 500 for adding secrets, so bad
// input (a name the rule refuses, a value that is not base64 or is over
// REANA_SITE_MAX_SECRET_BYTES) is answered 403, as reana-server answers
// the ValueError a bad value raises there, with a message that says what
// is wrong.

// secretIn is one secret of an add request.
type secretIn struct {
	Value *string `json:"value"`
	Type  string  `json:"type"`
}

// secretOut is one secret of a listing: never its value.
type secretOut struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// maxSecretsPerRequest bounds one add request, whose body is then bounded
// by that many values at the size limit.
const maxSecretsPerRequest = 64

func (s *Server) secretsDir(c caller) string { return s.Config.SecretsDir(c.Account) }

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	list, err := s.DB.Secrets(r.Context(), c.User.ID)
	if err != nil {
		s.internal(w, r, "list your secrets", err)
		return
	}
	out := make([]secretOut, 0, len(list))
	for _, x := range list {
		out = append(out, secretOut{Name: x.Name, Type: x.Type})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addSecrets(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	overwrite := false
	if v := r.URL.Query().Get("overwrite"); v != "" {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			writeError(w, http.StatusForbidden, fmt.Sprintf("Invalid overwrite value %q: it must be true or false.", v))
			return
		}
		overwrite = b
	}
	secrets, status, msg := s.decodeSecrets(w, r)
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	err := asuser.WriteSecrets(r.Context(), s.Runner, c.Account, asuser.SecretsWriteArgs{Dir: s.secretsDir(c), Secrets: secrets, Overwrite: overwrite})
	if asuser.IsKind(err, asuser.KindExists) {
		writeError(w, http.StatusConflict, "Operation cancelled. "+upperFirst(err.Error())+". If you want to change them use overwrite.")
		return
	}
	if s.secretsFailed(w, r, "store", err) {
		return
	}
	rows := make([]store.Secret, len(secrets))
	for i, x := range secrets {
		rows[i] = store.Secret{Name: x.Name, Type: x.Type}
	}
	if err := s.DB.PutSecrets(r.Context(), c.User.ID, rows); err != nil {
		s.internal(w, r, "record your secrets", err)
		return
	}
	writeJSON(w, http.StatusCreated, messageResponse{Message: "Secret(s) successfully added."})
}

// decodeSecrets reads and checks an add request; a non-zero status is the
// refusal to send.
func (s *Server) decodeSecrets(w http.ResponseWriter, r *http.Request) ([]asuser.Secret, int, string) {
	limit := s.Config.MaxSecretBytes
	// base64 makes 4 bytes of 3, and JSON adds a little per secret.
	body := http.MaxBytesReader(w, r.Body, (limit/3+2)*4*maxSecretsPerRequest+64<<10)
	var in map[string]secretIn
	if err := json.NewDecoder(body).Decode(&in); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, http.StatusForbidden, fmt.Sprintf("The request is too large: a secret may hold at most %s.", HumanBytes(limit))
		}
		return nil, http.StatusForbidden, `Malformed secrets: the body must be a JSON object such as {"NAME": {"value": "<base64>", "type": "env"}}.`
	}
	if len(in) == 0 {
		return nil, http.StatusForbidden, "No secrets given."
	}
	if len(in) > maxSecretsPerRequest {
		return nil, http.StatusForbidden, fmt.Sprintf("Too many secrets in one request (at most %d).", maxSecretsPerRequest)
	}
	names := make([]string, 0, len(in))
	for n := range in {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]asuser.Secret, 0, len(in))
	for _, n := range names {
		x := in[n]
		if err := asuser.CheckSecretName(n, x.Type); err != nil {
			return nil, http.StatusForbidden, "Invalid " + err.Error() + "."
		}
		if x.Value == nil {
			return nil, http.StatusForbidden, fmt.Sprintf("Secret %q has no value.", n)
		}
		if int64(base64.StdEncoding.DecodedLen(len(*x.Value))) > limit+2 {
			return nil, http.StatusForbidden, fmt.Sprintf("Secret %q is too large: a secret may hold at most %s.", n, HumanBytes(limit))
		}
		v, err := base64.StdEncoding.DecodeString(*x.Value)
		if err != nil {
			return nil, http.StatusForbidden, fmt.Sprintf("The value of secret %q is not base64 (as reana-client sends it): %v.", n, err)
		}
		if int64(len(v)) > limit {
			return nil, http.StatusForbidden, fmt.Sprintf("Secret %q is too large: a secret may hold at most %s.", n, HumanBytes(limit))
		}
		if x.Type == asuser.SecretEnv && strings.IndexByte(string(v), 0) >= 0 {
			return nil, http.StatusForbidden, fmt.Sprintf("The value of env secret %q holds a NUL byte, which no environment variable can; add it as a file secret instead.", n)
		}
		out = append(out, asuser.Secret{Name: n, Type: x.Type, Value: v})
	}
	return out, 0, ""
}

func (s *Server) deleteSecrets(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	var names []string
	if err := readJSONBody(r, &names); err != nil || len(names) == 0 {
		writeError(w, http.StatusForbidden, `Malformed request: the body must be a JSON list of secret names such as ["NAME"].`)
		return
	}
	res, err := asuser.DeleteSecrets(r.Context(), s.Runner, c.Account, asuser.SecretsDeleteArgs{Dir: s.secretsDir(c), Names: names})
	if s.secretsFailed(w, r, "delete", err) {
		return
	}
	if len(res.Missing) > 0 {
		// REANA's 404 body is the list of the names that do not exist.
		writeJSON(w, http.StatusNotFound, res.Missing)
		return
	}
	if err := s.DB.DeleteSecrets(r.Context(), c.User.ID, res.Deleted); err != nil {
		s.internal(w, r, "forget your deleted secrets", err)
		return
	}
	writeJSON(w, http.StatusOK, res.Deleted)
}

// secretsFailed answers a helper's failure to act on the user's secret
// directory (verb: store, delete), if there was one: a directory the
// checks refuse (a link, another's) is 403, anything else 500.
func (s *Server) secretsFailed(w http.ResponseWriter, r *http.Request, verb string, err error) bool {
	var ue *asuser.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &ue) && (ue.Kind == asuser.KindBadPath || ue.Kind == asuser.KindDenied):
		s.Log.Warn("secret directory refused", "user", callerOf(r).User.Name, "err", err)
		writeError(w, http.StatusForbidden, "Your secrets cannot be "+verb+"d: "+ue.Message+".")
	default:
		s.internal(w, r, verb+" your secrets", err)
	}
	return true
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
