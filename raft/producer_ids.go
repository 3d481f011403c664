package raft

import (
	"context"
	"encoding/json"
	"fmt"
)

// allocateProducerIDsCmd asks for Count producer ids. The state machine
// hands out the next block, so ids never repeat: not across nodes, not
// across restarts, not when a proposal is retried (a retry gets a new block
// and the old one is simply never used).
type allocateProducerIDsCmd struct {
	Count int64 `json:"count"`
}

// firstProducerID leaves id 0 unused, so a zero value never looks valid.
const firstProducerID = 1

func (c *clusterSM) allocateProducerIDs(body []byte) (result, []Change) {
	var cmd allocateProducerIDsCmd
	if err := json.Unmarshal(body, &cmd); err != nil {
		return failed(ErrUnsupportedCommand, "allocate producer ids: %v", err), nil
	}
	if cmd.Count < 1 || cmd.Count > 1<<20 {
		return failed(ErrInvalidUpdate, "allocate %d producer ids: ask for 1 to %d", cmd.Count, 1<<20), nil
	}
	st := &c.st
	if st.NextProducerID < firstProducerID {
		st.NextProducerID = firstProducerID
	}
	first := st.NextProducerID
	st.NextProducerID += cmd.Count
	return result{ProducerIDs: &idBlock{First: first, Count: cmd.Count}}, nil
}

// idBlock is a range of producer ids handed to one node.
type idBlock struct {
	First int64 `json:"first"`
	Count int64 `json:"count"`
}

// producerIDBlock is how many ids a node takes per Raft commit; it hands
// them out locally until they run out.
const producerIDBlock = 1000

// AllocateProducerID returns a producer id no node has handed out before.
// Ids come from the cluster group in blocks, so most calls need no commit.
func (s *Store) AllocateProducerID(ctx context.Context) (int64, error) {
	s.pidMu.Lock()
	defer s.pidMu.Unlock()
	if s.pidNext >= s.pidEnd {
		res, err := s.propose(ctx, ClusterGroup, kindAllocateProducerIDs, allocateProducerIDsCmd{Count: producerIDBlock})
		if err != nil {
			return 0, fmt.Errorf("allocate producer ids: %w", err)
		}
		s.pidNext, s.pidEnd = res.ProducerIDs.First, res.ProducerIDs.First+res.ProducerIDs.Count
	}
	id := s.pidNext
	s.pidNext++
	return id, nil
}
