package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
)

type wireAuditLog struct {
	ID            string         `json:"id"`
	IPAddress     string         `json:"ipAddress"`
	UserAgent     string         `json:"userAgent"`
	UserAgentType string         `json:"userAgentType"`
	ExpiresAt     *string        `json:"expiresAt"`
	CreatedAt     string         `json:"createdAt"`
	UpdatedAt     string         `json:"updatedAt"`
	OrgID         string         `json:"orgId"`
	ProjectID     *string        `json:"projectId"`
	ProjectName   *string        `json:"projectName"`
	Event         wireAuditEvent `json:"event"`
	Actor         wireAuditEvent `json:"actor"`
}

type wireAuditEvent struct {
	Type     string         `json:"type"`
	Metadata map[string]any `json:"metadata"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func parseTimeQuery(r *http.Request, name string) (time.Time, error) {
	v := query(r, name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		if d, err2 := time.Parse("2006-01-02", v); err2 == nil {
			return d, nil
		}
		return time.Time{}, field(name, "Invalid datetime")
	}
	return t, nil
}

func (s *Server) auditLogs(w http.ResponseWriter, r *http.Request) error {
	var f audit.Filter
	var err error
	if f.Start, err = parseTimeQuery(r, "startDate"); err != nil {
		return err
	}
	if f.End, err = parseTimeQuery(r, "endDate"); err != nil {
		return err
	}
	if f.Offset, err = queryInt(r, 0, 0, 1<<30, "offset"); err != nil {
		return err
	}
	if f.Limit, err = queryInt(r, 20, 1, 1000, "limit"); err != nil {
		return err
	}
	f.ProjectID = query(r, "projectId")
	f.ActorType = query(r, "actorType")
	f.ActorID = query(r, "actor")
	if et := query(r, "eventType"); et != "" {
		for _, t := range strings.Split(et, ",") {
			if t = strings.TrimSpace(t); t != "" {
				f.EventTypes = append(f.EventTypes, t)
			}
		}
	}
	evs, err := s.svc.Audit.List(r.Context(), actorFrom(r.Context()), f)
	if err != nil {
		return err
	}
	out := make([]wireAuditLog, len(evs))
	for i, ev := range evs {
		out[i] = wireAuditLog{ID: ev.ID, IPAddress: ev.IP, UserAgent: ev.UserAgent, UserAgentType: ev.UserAgentType,
			CreatedAt: rfc3339(ev.CreatedAt), UpdatedAt: rfc3339(ev.CreatedAt), OrgID: ev.OrgID,
			ProjectID: strPtr(ev.ProjectID), ProjectName: strPtr(ev.ProjectName),
			Event: wireAuditEvent{ev.Type, ev.Metadata}, Actor: wireAuditEvent{ev.ActorType, ev.ActorMetadata}}
	}
	return writeJSON(w, http.StatusOK, struct {
		AuditLogs []wireAuditLog `json:"auditLogs"`
	}{out})
}
