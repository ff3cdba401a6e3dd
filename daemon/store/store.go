// Package store is the gateway's durable state: one bbolt database per
// profile (state.db in the profile's state directory) holding agent
// session transcripts, pairing requests and paired nodes, and idempotency
// records.
//
// bbolt writes copy-on-write pages and switches between two meta pages, so
// a process killed mid-write (kill -9, power loss with a honest disk)
// leaves the last committed transaction intact: nothing half-written is
// ever read back. A full disk fails the transaction with an error naming
// the database and the cause; the previous state stays. The file is locked
// while open: a second gateway on the same profile waits up to the open
// timeout and then fails with an error that says so.
//
// Values are JSON. Buckets are created on first write; reading a bucket
// that does not exist yet reads nothing.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the database's name inside the profile's state directory.
const FileName = "state.db"

// Store is an open state database. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens (creating it and its directory, mode 0700/0600) the database
// at path. It waits at most timeout for another process's lock.
func Open(path string, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state store %s: create directory: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("state store %s is locked by another process (another gatewayd on this profile?); stop it or use another profile: %w", path, err)
		}
		return nil, fmt.Errorf("state store %s cannot be opened (if it is damaged, move it aside and restart: the gateway starts with an empty store): %w", path, err)
	}
	db.MaxBatchDelay = MaxBatchDelay
	return &Store{db: db, path: path}, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Tx is a read or read-write transaction. Its methods must not be used
// after the function given to View or Update returns.
type Tx struct {
	tx *bolt.Tx
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Update runs fn in a read-write transaction, committed when fn returns
// nil and rolled back otherwise. Commit errors (a full disk) name the
// store.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.writeErr(s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) }))
}

// Batch is Update for writers that run at the same time: concurrent
// Batch calls share one transaction and one fsync (bbolt's DB.Batch,
// collected for at most MaxBatchDelay), and each returns only once its
// change is durable. fn may run more than once (when another fn of the
// batch fails, the rest are retried), so it must not change anything
// outside the transaction: apply such effects after Batch returns nil.
func (s *Store) Batch(fn func(tx *Tx) error) error {
	return s.writeErr(s.db.Batch(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) }))
}

// writeErr names the store and the fix when a write failed on the disk.
func (s *Store) writeErr(err error) error {
	if err != nil && isDiskError(err) {
		return fmt.Errorf("state store %s: write failed, nothing was changed (free disk space in %s): %w", s.path, filepath.Dir(s.path), err)
	}
	return err
}

// MaxBatchDelay is how long Batch waits for other writers to join a
// transaction: short, as a lone writer pays it in full.
const MaxBatchDelay = time.Millisecond

func isDiskError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO)
}

// Put stores v (as JSON) under bucket/key.
func (s *Store) Put(bucket, key string, v any) error {
	return s.Update(func(tx *Tx) error { return tx.Put(bucket, key, v) })
}

// Get loads bucket/key into v; found is false when it is absent.
func (s *Store) Get(bucket, key string, v any) (found bool, err error) {
	err = s.View(func(tx *Tx) error {
		found, err = tx.Get(bucket, key, v)
		return err
	})
	return found, err
}

// Delete removes bucket/key (absent is fine).
func (s *Store) Delete(bucket, key string) error {
	return s.Update(func(tx *Tx) error { return tx.Delete(bucket, key) })
}

// List calls fn for each key in bucket that starts with prefix, in key
// order, with the raw JSON value (valid only during the call).
func (s *Store) List(bucket, prefix string, fn func(key string, raw []byte) error) error {
	return s.View(func(tx *Tx) error { return tx.List(bucket, prefix, fn) })
}

// Put stores v (as JSON) under bucket/key.
func (t *Tx) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state store: encode %s/%s: %w", bucket, key, err)
	}
	return t.PutRaw(bucket, key, raw)
}

// PutRaw stores raw bytes under bucket/key.
func (t *Tx) PutRaw(bucket, key string, raw []byte) error {
	if key == "" {
		return fmt.Errorf("state store: empty key in bucket %s", bucket)
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("state store: bucket %s: %w", bucket, err)
	}
	return b.Put([]byte(key), raw)
}

// Get loads bucket/key into v; found is false when it is absent.
func (t *Tx) Get(bucket, key string, v any) (bool, error) {
	raw := t.GetRaw(bucket, key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("state store: decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

// GetRaw returns the raw value of bucket/key, nil when absent. The slice
// is valid only during the transaction.
func (t *Tx) GetRaw(bucket, key string) []byte {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Get([]byte(key))
}

// Delete removes bucket/key.
func (t *Tx) Delete(bucket, key string) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

// List calls fn for each key in bucket starting with prefix, in order.
func (t *Tx) List(bucket, prefix string, fn func(key string, raw []byte) error) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}

// Count is the number of keys in bucket starting with prefix.
func (t *Tx) Count(bucket, prefix string) int {
	n := 0
	_ = t.List(bucket, prefix, func(string, []byte) error { n++; return nil })
	return n
}
