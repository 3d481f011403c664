package raft

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// identity pins a data directory to one node of one cluster, so pointing a
// node at another's directory fails loudly instead of corrupting both. It
// also remembers what the node must know before it starts its groups.
type identity struct {
	Cluster         string `json:"cluster"`
	NodeID          uint64 `json:"node_id"`
	PartitionGroups int    `json:"partition_groups,omitempty"`
	// NonVoting lists the groups this node joined as a non-voter and has
	// not yet been promoted in (members.go, promote). Dragonboat must be
	// told at start whether a replica is a non-voter, and panics if it
	// guesses wrong, so the list is written before such a replica first
	// starts and a group leaves it only after its promotion was applied.
	NonVoting []uint64 `json:"non_voting,omitempty"`
}

const identityFile = "identity.json"

// loadIdentity reads the data directory's identity, or writes a new one.
func (s *Store) loadIdentity(dir string) error {
	s.idDir = dir
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.id = identity{Cluster: s.cfg.ClusterName, NodeID: s.cfg.NodeID}
		return s.writeIdentity()
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if id.NodeID != s.cfg.NodeID || id.Cluster != s.cfg.ClusterName {
		return fmt.Errorf("%w: %s holds node %d of cluster %q, but this is node %d of cluster %q; fix node.id/cluster.name or use another data_dir",
			ErrIdentity, s.cfg.DataDir, id.NodeID, id.Cluster, s.cfg.NodeID, s.cfg.ClusterName)
	}
	s.id = id
	return nil
}

// updateIdentity changes the identity and writes it durably; on a failed
// write the change is undone, so memory never runs ahead of the disk.
func (s *Store) updateIdentity(change func(*identity)) error {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	old := s.id
	old.NonVoting = slices.Clone(old.NonVoting)
	change(&s.id)
	if err := s.writeIdentity(); err != nil {
		s.id = old
		return err
	}
	return nil
}

// identity returns a copy of the identity.
func (s *Store) identity() identity {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	id := s.id
	id.NonVoting = slices.Clone(id.NonVoting)
	return id
}

// writeIdentity writes s.id; the caller holds idMu or is Open.
func (s *Store) writeIdentity() error {
	b, _ := json.MarshalIndent(s.id, "", "  ")
	return fsutil.WriteFileAtomic(s.idDir, identityFile, append(b, '\n'), 0o640)
}
