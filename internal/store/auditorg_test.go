package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// An event that names no organization is recorded under its project's
// (lease revocations by the worker are such events), one that names one
// under that one, and one with neither under none; in a group commit and
// inside a change's transaction alike, mixed in one statement.
func TestAuditEventsTakeTheirProjectsOrganization(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			ctx := context.Background()
			var p struct{ Project struct{ ID string } }
			e.Must(t, 200, "POST", "/api/v1/projects", e.Token, map[string]any{"projectName": "orgs"}).Decode(t, &p)
			for _, path := range []string{"group", "transaction"} {
				ev := func(marker, org, project string) audit.Event {
					return audit.Event{OrgID: org, ProjectID: project, ActorType: "platform", ActorID: "test", Type: "test-" + path,
						Metadata: map[string]any{"marker": marker}}
				}
				evs := []audit.Event{ev("project's", "", p.Project.ID), ev("own", "other-org", p.Project.ID),
					ev("none", "", ""), ev("gone", "", "01a00000-0000-7000-8000-000000000000"), ev("project's again", "", p.Project.ID)}
				var err error
				if path == "group" {
					err = e.DB.WriteAuditGroup(ctx, evs)
				} else {
					err = e.DB.InsertAuditsInTx(ctx, evs...)
				}
				if err != nil {
					t.Fatal(err)
				}
				for org, want := range map[string][]string{e.OrgID: {"project's", "project's again"}, "other-org": {"own"}, "": {"gone", "none"}} {
					got, err := e.DB.AuditEvents(ctx, audit.Filter{OrgID: org, EventTypes: []string{"test-" + path}, Limit: 100})
					if err != nil {
						t.Fatal(err)
					}
					var markers []string
					for _, g := range got {
						markers = append(markers, fmt.Sprint(g.Metadata["marker"]))
					}
					slices.Sort(markers)
					if !slices.Equal(markers, want) {
						t.Errorf("%s: organization %q holds %v, want %v", path, org, markers, want)
					}
				}
			}
		})
	}
}
