package web

import (
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/dotenv"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
)

// projectView is the project every project page shows, with what the actor
// may do in it (to hide controls; the domain still checks every action).
type projectView struct {
	project.Project
	Can map[string]bool
	set authz.Set // the actor's permissions in the project
}

func (h *Handler) loadProject(q *req) (projectView, error) {
	p, err := h.svc.Projects.Get(q.ctx(), q.actor, q.PathValue("pid"))
	if err != nil {
		return projectView{}, err
	}
	perms, err := h.svc.Authz.ProjectPermissions(q.ctx(), q.actor, p.ID)
	if err != nil {
		return projectView{}, err
	}
	can := allowed(perms, nil, projectControls)
	return projectView{Project: p, Can: can, set: perms}, nil
}

// cleanPath normalises a folder path from a query ("" is the root).
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	return path.Clean("/" + p)
}

type crumb struct{ Name, Path string }

// breadcrumbs are the links to p's folders, each path a prefix of p (no
// copy each: built by concatenation, 30,000 segments in a 60 KB URL made
// 953 MB), at most maxCrumbs of them: the domain refuses a deeper path.
func breadcrumbs(p string) []crumb {
	out := []crumb{{"root", "/"}}
	p = "/" + strings.Trim(p, "/")
	start := 1
	for i := 1; i <= len(p) && len(out) < maxCrumbs; i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		if i > start {
			out = append(out, crumb{p[start:i], p[:i]})
		}
		start = i + 1
	}
	return out
}

// maxCrumbs is the root and project.NormalizePath's 32 folders, and one.
const maxCrumbs = 34

func (h *Handler) projects(w http.ResponseWriter, q *req) error {
	list, err := h.svc.Projects.List(q.ctx(), q.actor)
	if err != nil {
		return err
	}
	search := strings.TrimSpace(q.FormValue("q"))
	if search != "" {
		l := strings.ToLower(search)
		list = slices.DeleteFunc(list, func(p project.Project) bool {
			return !strings.Contains(strings.ToLower(p.Name), l) && !strings.Contains(p.Slug, l)
		})
	}
	can, err := h.orgCan(q)
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "projects", map[string]any{"Title": "Projects", "Projects": list, "Search": search, "Can": can})
	return nil
}

func (h *Handler) projectCreate(w http.ResponseWriter, q *req) error {
	p, err := h.svc.Projects.CreateProject(q.ctx(), q.actor, project.NewProject{Name: q.PostFormValue("name"),
		Description: q.PostFormValue("description")})
	if err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+p.ID+"/secrets")
	return nil
}

// gridRow is one key of the overview: its secret in each environment, or
// nil where the environment lacks it.
type gridRow struct {
	Key   string
	Cells []*secret.Secret
}

// Overview is the secrets grid of a folder: keys × environments.
type Overview struct {
	Project projectView
	Path    string
	// Parent and Name are the folder's parent path and name (not for the root).
	Parent, Name string
	Crumbs       []crumb
	Folders      []string
	Rows         []gridRow
	Tags         []secret.Tag
	// Denied are the environments whose secrets the actor may not list.
	Denied []string
	// Imports are the folder's imports in each environment that has any.
	Imports []envImports
	// Body is the grid's rows, written by gridBody: html/template's
	// per-value escaping by reflection cost ~10 µs a cell, 30 ms for 3,000.
	Body template.HTML
}

// envImports are the imports of the folder in one environment.
type envImports struct {
	Env  string
	List []secret.Import
}

// gridBody writes the rows of the grid, escaping every value itself:
// text with html.EscapeString, query values with url.QueryEscape (then
// html-escaped for the attribute). Nothing else is interpolated. What is the
// same in every row (each environment's cell openings) is escaped once.
func gridBody(ov *Overview) template.HTML {
	esc := html.EscapeString
	pathQ := esc(url.QueryEscape(ov.Path))
	pid := esc(ov.Project.ID)
	type envCell struct{ missing, present, name string }
	cells := make([]envCell, len(ov.Project.Environments))
	for i, env := range ov.Project.Environments {
		slug, name := esc(env.Slug), esc(env.Name)
		cells[i] = envCell{
			missing: `<td class="missing" data-env="` + slug + `"><span aria-label="missing in ` + name + `">missing</span></td>`,
			present: `<td class="present" data-env="` + slug + `"><a href="/projects/` + pid + `/secret?env=` +
				esc(url.QueryEscape(env.Slug)) + `&amp;path=` + pathQ + `&amp;key=`,
			name: ` in ` + name + `">••••••</a> <span class="small">v`,
		}
	}
	var b strings.Builder
	b.Grow(len(ov.Rows) * (200 + 260*len(cells)))
	var num [20]byte
	for _, r := range ov.Rows {
		key := esc(r.Key)
		keyQ := esc(url.QueryEscape(r.Key))
		b.WriteString(`<tr data-key="`)
		b.WriteString(key)
		b.WriteString(`"><th scope="row"><code>`)
		b.WriteString(key)
		b.WriteString("</code></th>")
		for i, c := range r.Cells {
			if c == nil {
				b.WriteString(cells[i].missing)
				continue
			}
			b.WriteString(cells[i].present)
			b.WriteString(keyQ)
			b.WriteString(`" aria-label="`)
			b.WriteString(key)
			b.WriteString(cells[i].name)
			b.Write(strconv.AppendInt(num[:0], int64(c.Version), 10))
			b.WriteString(`</span>`)
			for _, t := range c.Tags {
				b.WriteString(` <span class="pill">`)
				b.WriteString(esc(t.Slug))
				b.WriteString(`</span>`)
			}
			b.WriteString("</td>")
		}
		b.WriteString("</tr>\n")
	}
	return template.HTML(b.String())
}

// envGrid is what the overview reads of one environment's folder.
type envGrid struct {
	secrets []secret.Secret
	imports []secret.Import
	folders []project.Folder
	denied  bool
	err     error
}

// gridReaders bounds the environments one overview reads at once.
const gridReaders = 4

// overview builds the grid of folder p: one List per environment (values
// hidden: the grid shows none), merged by key. The environments are read
// concurrently (each List waits for its audit event to be committed; side by
// side, those share group commits), and merged in the project's order.
func (h *Handler) overview(q *req, pv projectView, p string) (Overview, error) {
	ov := Overview{Project: pv, Path: p, Crumbs: breadcrumbs(p)}
	if p != "/" {
		ov.Parent, ov.Name = cleanPath(path.Dir(p)), path.Base(p)
	}
	grids := make([]envGrid, len(pv.Environments))
	var tags []secret.Tag
	var tagsErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, gridReaders)
	wg.Go(func() {
		defer recovered(&tagsErr)
		tags, tagsErr = h.svc.Secrets.Tags(q.ctx(), q.actor, pv.ID)
	})
	for i, env := range pv.Environments {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			defer recovered(&grids[i].err)
			grids[i] = h.envGrid(q, pv.ID, env.Slug, p)
		})
	}
	wg.Wait()
	idx := map[string]int{}
	folders := map[string]bool{}
	for i, g := range grids {
		if g.err != nil {
			return Overview{}, g.err
		}
		if g.denied {
			ov.Denied = append(ov.Denied, pv.Environments[i].Slug)
			continue
		}
		for j := range g.secrets {
			s := &g.secrets[j]
			if s.Type == "personal" {
				continue
			}
			r, ok := idx[s.Key]
			if !ok {
				r = len(ov.Rows)
				idx[s.Key] = r
				ov.Rows = append(ov.Rows, gridRow{Key: s.Key, Cells: make([]*secret.Secret, len(pv.Environments))})
			}
			ov.Rows[r].Cells[i] = s
		}
		if len(g.imports) > 0 {
			ov.Imports = append(ov.Imports, envImports{pv.Environments[i].Slug, g.imports})
		}
		for _, f := range g.folders {
			folders[f.Name] = true
		}
	}
	if tagsErr != nil && errs.KindOf(tagsErr) != errs.Forbidden {
		return Overview{}, tagsErr
	}
	ov.Tags = tags
	slices.SortFunc(ov.Rows, func(a, b gridRow) int { return strings.Compare(a.Key, b.Key) })
	for f := range folders {
		ov.Folders = append(ov.Folders, f)
	}
	slices.Sort(ov.Folders)
	ov.Body = gridBody(&ov)
	return ov, nil
}

// recovered turns a panic of the goroutine it is deferred in into *err (the
// server's recovery covers only the request's own goroutine).
func recovered(err *error) {
	if v := recover(); v != nil {
		*err = errs.Internalf(fmt.Errorf("panic: %v\n%s", v, debug.Stack()), "read the overview")
	}
}

// envGrid reads folder p of one environment: its secrets (values hidden),
// imports and subfolders. A role scoped to other environments marks it
// denied; a missing folder is empty.
func (h *Handler) envGrid(q *req, pid, env, p string) envGrid {
	sc := secret.Scope{ProjectID: pid, Env: env, Path: p}
	res, err := h.svc.Secrets.List(q.ctx(), q.actor, sc, secret.ReadOptions{HideValue: true})
	if errs.KindOf(err) == errs.Forbidden {
		return envGrid{denied: true}
	}
	if err != nil && errs.KindOf(err) != errs.NotFound {
		return envGrid{err: err}
	}
	g := envGrid{secrets: res.Secrets}
	if g.imports, err = h.svc.Secrets.ListImports(q.ctx(), q.actor, sc); err != nil && errs.KindOf(err) != errs.NotFound && errs.KindOf(err) != errs.Forbidden {
		return envGrid{err: err}
	}
	if g.folders, err = h.svc.Projects.ListFolders(q.ctx(), q.actor, project.FolderRef{ProjectID: pid, Env: env, Path: p}); err != nil &&
		errs.KindOf(err) != errs.NotFound && errs.KindOf(err) != errs.Forbidden {
		return envGrid{err: err}
	}
	return g
}

func (h *Handler) secrets(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	ov, err := h.overview(q, pv, cleanPath(q.FormValue("path")))
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "secrets", map[string]any{"Title": pv.Name + " · Secrets", "O": ov})
	return nil
}

func scopeOf(q *req) secret.Scope {
	return secret.Scope{ProjectID: q.PathValue("pid"), Env: q.FormValue("env"), Path: cleanPath(q.FormValue("path"))}
}

func backToGrid(q *req) string {
	return "/projects/" + q.PathValue("pid") + "/secrets?path=" + url.QueryEscape(cleanPath(q.FormValue("path")))
}

func backToSecret(q *req, key string) string {
	return "/projects/" + q.PathValue("pid") + "/secret?env=" + url.QueryEscape(q.FormValue("env")) +
		"&path=" + url.QueryEscape(cleanPath(q.FormValue("path"))) + "&key=" + url.QueryEscape(key)
}

func (h *Handler) secretCreate(w http.ResponseWriter, q *req) error {
	_, err := h.svc.Secrets.Create(q.ctx(), q.actor, scopeOf(q), []secret.New{{Key: q.PostFormValue("key"),
		Value: q.PostFormValue("value"), Comment: q.PostFormValue("comment"), TagIDs: q.PostForm["tag"]}})
	if err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

func (h *Handler) secretUpdate(w http.ResponseWriter, q *req) error {
	key := q.PostFormValue("key")
	var c secret.Change
	if v := q.PostFormValue("value"); v != "" { // empty: unchanged
		c.Value = &v
	}
	if q.PostForm.Has("comment") {
		v := q.PostFormValue("comment")
		c.Comment = &v
	}
	if q.PostForm.Has("tags") { // marker: the tag checkboxes were on the form
		t := q.PostForm["tag"]
		if t == nil {
			t = []string{}
		}
		c.TagIDs = &t
	}
	if nk := strings.TrimSpace(q.PostFormValue("newKey")); nk != "" && nk != key {
		c.NewKey = &nk
		key = nk
	}
	if _, err := h.svc.Secrets.Update(q.ctx(), q.actor, scopeOf(q), q.PostFormValue("key"), c); err != nil {
		return err
	}
	redirect(w, q.Request, backToSecret(q, key))
	return nil
}

func (h *Handler) secretDelete(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Secrets.Delete(q.ctx(), q.actor, scopeOf(q), q.PostFormValue("key"), ""); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

// secretRow applies the grid's row editor: for each environment of the
// project, "delete.<env>" deletes the key there, and a non-empty
// "value.<env>" sets its value (creating the secret where the key is
// missing); an environment with neither is left alone, and so is a delete
// where the key is not (delete wins over a value). Each change is its own
// domain call (checked and audited as the others); a refusal stops at that
// environment, naming it, with the earlier ones applied.
func (h *Handler) secretRow(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	key, p := strings.TrimSpace(q.PostFormValue("key")), cleanPath(q.PostFormValue("path"))
	if key == "" {
		return errs.BadRequest("key is required")
	}
	// One request's writes: they share one expansion budget.
	ctx := secret.WithWriteChecks(q.ctx())
	for _, env := range pv.Environments {
		sc := secret.Scope{ProjectID: pv.ID, Env: env.Slug, Path: p}
		var err error
		switch v := q.PostFormValue("value." + env.Slug); {
		case q.PostFormValue("delete."+env.Slug) != "":
			_, err = h.svc.Secrets.Delete(ctx, q.actor, sc, key, "")
			if errs.KindOf(err) == errs.NotFound {
				err = nil // nothing to delete here
			}
		case v != "":
			_, err = h.svc.Secrets.Update(ctx, q.actor, sc, key, secret.Change{Value: &v})
			if errs.KindOf(err) == errs.NotFound {
				_, err = h.svc.Secrets.Create(ctx, q.actor, sc, []secret.New{{Key: key, Value: v}})
			}
		}
		if err != nil {
			return inEnvironment(err, env.Slug)
		}
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

// inEnvironment names env in a domain error's message (for the row editor,
// which changes several environments in one request).
func inEnvironment(err error, env string) error {
	var e *errs.Error
	if errors.As(err, &e) && e.Kind != errs.Internal {
		c := *e
		c.Message = env + ": " + e.Message
		return &c
	}
	return err
}

// parseDotenv reads a .env file as the CLI does (dotenv.Parse: quotes
// spanning lines, bash's $'...', comments), so that a download pasted back
// reads as it was written: line by line, a value's later lines were read as
// secrets of their own. A key set twice takes its last value, as a shell
// sourcing the file would (the batch update names each secret once).
func parseDotenv(text string) ([]secret.BatchItem, error) {
	ps, err := dotenv.Parse(text)
	if err != nil {
		return nil, errs.Invalidf("%s", err.Error())
	}
	var out []secret.BatchItem
	at := map[string]int{}
	for _, p := range ps {
		val := p.Value
		if i, ok := at[p.Key]; ok {
			out[i].Value = &val
			continue
		}
		at[p.Key] = len(out)
		out = append(out, secret.BatchItem{Key: p.Key, Change: secret.Change{Value: &val}})
	}
	if len(out) == 0 {
		return nil, errs.Invalidf("no KEY=VALUE lines found")
	}
	return out, nil
}

func (h *Handler) secretImport(w http.ResponseWriter, q *req) error {
	items, err := parseDotenv(q.PostFormValue("dotenv"))
	if err != nil {
		return err
	}
	if _, err := h.svc.Secrets.UpdateMany(q.ctx(), q.actor, scopeOf(q), secret.Upsert, items); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

// fromTheDashboard refuses a GET that reads secrets when the browser says
// another site asked for it (Sec-Fetch-Site): the session cookie is
// SameSite=Lax, so a link or a navigation from any site carried it, and
// saved prod.env in the victim's downloads, or read a value, each an
// audited read in the victim's name. A typed address ("none") and clients
// that send no such header are served.
func fromTheDashboard(q *req) error {
	if site := q.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errs.Forbiddenf("Secrets are read here only from the dashboard's own pages")
	}
	return nil
}

// secretDownload answers the folder's shared secrets as a dotenv file,
// each value in single quotes, since such a file is sourced: double quotes
// left $(...) and backquotes to the shell, and a value with none of a few
// characters went unquoted (brace expansion ran x;{curl,...}|sh). Keys a
// shell would run, or that make programs run code (BASH_ENV, LD_PRELOAD,
// ...), and values single quotes cannot hold for every reader (a quote, a
// backslash, a control character: bash's $'...' does not exist in dash),
// are left out, each named in a comment at the top.
func (h *Handler) secretDownload(w http.ResponseWriter, q *req) error {
	if err := fromTheDashboard(q); err != nil {
		return err
	}
	sc := scopeOf(q)
	res, err := h.svc.Secrets.List(q.ctx(), q.actor, sc, secret.ReadOptions{})
	if err != nil {
		return err
	}
	var head, body strings.Builder
	for _, s := range res.Secrets {
		if s.ValueHidden || s.Type == "personal" {
			continue
		}
		why, _ := dotenv.Refusal(s.Key, s.Value, true)
		if why == "" && !dotenv.IsShellName(s.Key) {
			why = "its name is not a shell variable's (letters, digits and _, not starting with a digit): sourced, the line would be run as a command and its value printed in the error"
		}
		if why == "" && !dotenv.SingleQuoted(s.Value) {
			why = "its value holds a quote, a backslash or a control character, which no quoting writes for every shell and dotenv reader alike; reveal it here or read it with the CLI"
		}
		if why != "" {
			fmt.Fprintf(&head, "# left out %s: %s\n", strconv.QuoteToASCII(s.Key), why)
			continue
		}
		fmt.Fprintf(&body, "%s=%s\n", s.Key, dotenv.Quote(s.Value))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", sc.Env+".env"))
	w.Write([]byte(head.String() + body.String()))
	return nil
}

func (h *Handler) getSecret(q *req, hide bool) (secret.Secret, error) {
	return h.svc.Secrets.Get(q.ctx(), q.actor, scopeOf(q), q.FormValue("key"),
		secret.GetOptions{ReadOptions: secret.ReadOptions{HideValue: hide}})
}

func (h *Handler) secretPage(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	s, err := h.getSecret(q, true)
	if err != nil {
		return err
	}
	tags, _ := h.svc.Secrets.Tags(q.ctx(), q.actor, pv.ID)
	has := map[string]bool{}
	for _, t := range s.Tags {
		has[t.ID] = true
	}
	h.render(w, q, http.StatusOK, "secret", map[string]any{"Title": s.Key, "P": pv, "S": s, "Env": q.FormValue("env"),
		"Can":  secretCan(pv, s),
		"Path": cleanPath(q.FormValue("path")), "Crumbs": breadcrumbs(cleanPath(q.FormValue("path"))), "Tags": tags, "Has": has})
	return nil
}

// secretValue answers the reveal button: the value as text, read (and
// audited) on demand.
func (h *Handler) secretValue(w http.ResponseWriter, q *req) error {
	if err := fromTheDashboard(q); err != nil {
		return err
	}
	s, err := h.svc.Secrets.Get(q.ctx(), q.actor, scopeOf(q), q.FormValue("key"),
		secret.GetOptions{ReadOptions: secret.ReadOptions{Expand: q.FormValue("resolve") == "1"}})
	if err != nil {
		return err
	}
	if s.ValueHidden {
		return errs.Forbiddenf("You may not read this secret's value")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(s.Value))
	return nil
}

type diffLine struct {
	Op   string // "+", "-" or " "
	Text string
}

// lineDiff is a small LCS diff of two values' lines.
func lineDiff(a, b string) []diffLine {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(x)*len(y) > 250_000 {
		return []diffLine{{"-", "(value too long to compare line by line)"}}
	}
	l := make([][]int, len(x)+1)
	for i := range l {
		l[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, diffLine{" ", x[i]})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || l[i+1][j] >= l[i][j+1]):
			out = append(out, diffLine{"-", x[i]})
			i++
		default:
			out = append(out, diffLine{"+", y[j]})
			j++
		}
	}
	return out
}

// secretControls are the controls of one secret's pages, checked with the
// secret's own condition fields (environment, path, key, tags).
var secretControls = map[string]control{
	"edit":     {authz.ActEdit, authz.SubSecrets},
	"delete":   {authz.ActDelete, authz.SubSecrets},
	"rollback": {authz.ActCreate, authz.SubSecretRollback},
	"history":  {authz.ActRead, authz.SubSecretRollback},
}

// secretCan is allowed for secret s, plus "value": whether its value may be
// read (the Reveal and Copy buttons).
func secretCan(pv projectView, s secret.Secret) map[string]bool {
	can := allowed(pv.set, secret.Fields(s.Env, s.Path, s.Key, s.Tags), secretControls)
	can["value"] = secret.ValueReadable(pv.set, s.Env, s.Path, s.Key, s.Tags)
	return can
}

// secretHistory lists a secret's versions without a value: each version's
// changes are revealed on demand (secretVersionDiff, an audited read), and
// only where the domain let the actor read that version's value.
func (h *Handler) secretHistory(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	s, err := h.getSecret(q, true)
	if err != nil {
		return err
	}
	offset := 0
	if v := q.FormValue("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return errs.BadRequest("offset must be a number of versions, 0 or more")
		}
	}
	vs, err := h.svc.Secrets.Versions(q.ctx(), q.actor, s.ID, offset, historyPage+1)
	if err != nil {
		return err
	}
	older := len(vs) > historyPage
	vs = vs[:min(len(vs), historyPage)]
	for i := range vs { // drop the values before anything renders
		vs[i].Value = ""
	}
	d := map[string]any{"Title": s.Key + " · History", "P": pv, "S": s, "Env": q.FormValue("env"),
		"Path": cleanPath(q.FormValue("path")), "Versions": vs, "Can": secretCan(pv, s)}
	if older {
		d["Older"] = strconv.Itoa(offset + historyPage) // a string: "0" still shows the link
	}
	if offset > 0 {
		d["Newer"] = strconv.Itoa(max(offset-historyPage, 0))
	}
	h.render(w, q, http.StatusOK, "history", d)
	return nil
}

// historyPage is how many versions one page of a secret's history lists.
const historyPage = 100

// secretVersionDiff answers a version's Reveal: the lines of its value as
// text, each marked "+" (added), "-" (removed) or " " against the version
// before it.
func (h *Handler) secretVersionDiff(w http.ResponseWriter, q *req) error {
	if err := fromTheDashboard(q); err != nil {
		return err
	}
	n, err := strconv.Atoi(q.FormValue("version"))
	if err != nil {
		return errs.BadRequest("version must be a number")
	}
	s, err := h.getSecret(q, true)
	if err != nil {
		return err
	}
	if n < 1 || n > s.Version {
		return errs.NotFoundf("Version %d not found", n)
	}
	// Versions are numbered 1..current with no gap (each write is a
	// compare-and-set of the next number), newest first: version n and the
	// one before it are at offset current-n (one more read tolerates a write
	// since s was read). Those older than the project's pitVersionLimit are
	// gone: not found, and the oldest kept shows as all new.
	vs, err := h.svc.Secrets.Versions(q.ctx(), q.actor, s.ID, s.Version-n, 3)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(vs, func(v secret.Secret) bool { return v.Version == n })
	if i < 0 {
		return errs.NotFoundf("Version %d not found", n)
	}
	if vs[i].ValueHidden {
		return errs.Forbiddenf("You may not read this secret's value")
	}
	var diff []diffLine
	if i+1 < len(vs) && !vs[i+1].ValueHidden { // newest first
		diff = lineDiff(vs[i+1].Value, vs[i].Value)
	} else { // the first version (or one before it hidden): every line is new
		for _, l := range strings.Split(vs[i].Value, "\n") {
			diff = append(diff, diffLine{"+", l})
		}
	}
	var b strings.Builder
	for _, l := range diff {
		b.WriteString(l.Op + " " + l.Text + "\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(b.String()))
	return nil
}

func (h *Handler) secretRollback(w http.ResponseWriter, q *req) error {
	v, err := strconv.Atoi(q.PostFormValue("version"))
	if err != nil {
		return errs.Invalidf("version must be a number")
	}
	s, err := h.svc.Secrets.Rollback(q.ctx(), q.actor, q.PostFormValue("id"), v)
	if err != nil {
		return err
	}
	redirect(w, q.Request, backToSecret(q, s.Key)+"&rolledBack="+strconv.Itoa(v))
	return nil
}

func (h *Handler) importCreate(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Secrets.CreateImport(q.ctx(), q.actor, scopeOf(q), secret.Target{Env: q.PostFormValue("fromEnv"),
		Path: cleanPath(q.PostFormValue("fromPath"))}); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

func (h *Handler) importDelete(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Secrets.DeleteImport(q.ctx(), q.actor, scopeOf(q), q.PostFormValue("id")); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

func (h *Handler) tagCreate(w http.ResponseWriter, q *req) error {
	name := strings.TrimSpace(q.PostFormValue("name"))
	slug := project.Slugify(name)
	if _, err := h.svc.Secrets.CreateTag(q.ctx(), q.actor, q.PathValue("pid"), secret.TagChange{Name: &name, Slug: &slug}); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

func (h *Handler) folderCreate(w http.ResponseWriter, q *req) error {
	ref := project.FolderRef{ProjectID: q.PathValue("pid"), Env: q.PostFormValue("env"), Path: cleanPath(q.PostFormValue("path"))}
	if _, err := h.svc.Projects.CreateFolder(q.ctx(), q.actor, ref, q.PostFormValue("name"), ""); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

func (h *Handler) folderDelete(w http.ResponseWriter, q *req) error {
	ref := project.FolderRef{ProjectID: q.PathValue("pid"), Env: q.PostFormValue("env"), Path: cleanPath(q.PostFormValue("path"))}
	if _, err := h.svc.Projects.DeleteFolder(q.ctx(), q.actor, ref, q.PostFormValue("name")); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

// folderRename renames folder name under path in one environment and shows
// the grid of its new path.
func (h *Handler) folderRename(w http.ResponseWriter, q *req) error {
	ref := project.FolderRef{ProjectID: q.PathValue("pid"), Env: q.PostFormValue("env"), Path: cleanPath(q.PostFormValue("path"))}
	f, err := h.svc.Projects.UpdateFolder(q.ctx(), q.actor, ref, q.PostFormValue("name"), q.PostFormValue("newName"), "")
	if err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/secrets?path="+url.QueryEscape(f.Path))
	return nil
}

// tagUpdate renames a tag; its slug, which permission conditions match, stays.
func (h *Handler) tagUpdate(w http.ResponseWriter, q *req) error {
	name := strings.TrimSpace(q.PostFormValue("name"))
	if _, err := h.svc.Secrets.UpdateTag(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("tid"), secret.TagChange{Name: &name}); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

func (h *Handler) tagDelete(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Secrets.DeleteTag(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("tid")); err != nil {
		return err
	}
	redirect(w, q.Request, backToGrid(q))
	return nil
}

func (h *Handler) environmentUpdate(w http.ResponseWriter, q *req) error {
	var c project.EnvironmentChange
	if v := strings.TrimSpace(q.PostFormValue("name")); v != "" {
		c.Name = &v
	}
	if v := strings.TrimSpace(q.PostFormValue("slug")); v != "" {
		c.Slug = &v
	}
	if v := strings.TrimSpace(q.PostFormValue("position")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errs.BadRequest("position must be a number")
		}
		c.Position = &n
	}
	if _, err := h.svc.Projects.UpdateEnvironment(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("eid"), c); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/environments")
	return nil
}

func (h *Handler) environments(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "environments", map[string]any{"Title": pv.Name + " · Environments", "P": pv})
	return nil
}

func (h *Handler) environmentCreate(w http.ResponseWriter, q *req) error {
	name, slug := q.PostFormValue("name"), q.PostFormValue("slug")
	if _, err := h.svc.Projects.CreateEnvironment(q.ctx(), q.actor, q.PathValue("pid"),
		project.EnvironmentChange{Name: &name, Slug: &slug}); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/environments")
	return nil
}

func (h *Handler) environmentDelete(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Projects.DeleteEnvironment(q.ctx(), q.actor, q.PathValue("pid"), q.PostFormValue("id")); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/environments")
	return nil
}

func (h *Handler) roles(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	rs, err := h.svc.Roles.List(q.ctx(), q.actor, pv.ID)
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "roles", map[string]any{"Title": pv.Name + " · Roles", "P": pv, "Roles": rs,
		"Editor": newRoleEditor(authz.ProjectSubjects(), nil)})
	return nil
}

// projectRole shows one project role with the role editor.
func (h *Handler) projectRole(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	rs, err := h.svc.Roles.List(q.ctx(), q.actor, pv.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(rs, func(r project.Role) bool { return r.ID == q.PathValue("id") })
	if i < 0 {
		return errs.NotFoundf("Role not found")
	}
	r := rs[i]
	builtin := r.ID == r.Slug
	h.render(w, q, http.StatusOK, "role", map[string]any{"Title": r.Name, "Kind": "Project role", "P": pv, "Name": r.Name,
		"Slug": r.Slug, "Description": r.Description, "Rules": r.Permissions, "Builtin": builtin,
		"CanEdit": pv.Can["editRole"] && !builtin, "CanDelete": pv.Can["deleteRole"] && !builtin,
		"Action": "/projects/" + pv.ID + "/roles/" + r.ID, "Back": "/projects/" + pv.ID + "/roles",
		"Editor": newRoleEditor(authz.ProjectSubjects(), r.Permissions)})
	return nil
}

func projectRoleChange(q *req) (project.RoleChange, error) {
	c, err := roleChange(q, authz.ProjectSubjects())
	return project.RoleChange{Slug: c.Slug, Name: c.Name, Description: c.Description, Permissions: c.Permissions}, err
}

func (h *Handler) projectRoleCreate(w http.ResponseWriter, q *req) error {
	c, err := projectRoleChange(q)
	if err != nil {
		return err
	}
	r, err := h.svc.Roles.Create(q.ctx(), q.actor, q.PathValue("pid"), c)
	if err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/roles/"+r.ID)
	return nil
}

func (h *Handler) projectRoleUpdate(w http.ResponseWriter, q *req) error {
	c, err := projectRoleChange(q)
	if err != nil {
		return err
	}
	r, err := h.svc.Roles.Update(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("id"), c)
	if err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/roles/"+r.ID)
	return nil
}

func (h *Handler) projectRoleDelete(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Roles.Delete(q.ctx(), q.actor, q.PathValue("pid"), q.PathValue("id")); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/roles")
	return nil
}
