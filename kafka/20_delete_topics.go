package kafka

// DeleteTopics, v0-v6.
//
// Up to v5 topics are named; v6 names them or gives their ids. The topic
// leaves the metadata at once; each node deletes its logs when it applies
// the change.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteTopics(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := s.clientTimeout(req.TimeoutMillis)
	defer cancel()
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version < 6 {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	} else {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var name string
		switch {
		case tg.name != nil:
			name = *tg.name
			if t, ok := s.cluster.Topic(name); ok {
				st.TopicID = t.ID
			}
		default:
			t, ok := s.parts.topicByID(tg.id)
			if !ok {
				st.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			name = t.Name
			st.Topic = &t.Name
		}
		if err := s.cluster.DeleteTopic(ctx, name); err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errMessage(fmt.Errorf("delete topic %q: %w", name, err))
		} else {
			s.log.Info("kafka: topic deleted", "topic", name)
			s.parts.changed()
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
