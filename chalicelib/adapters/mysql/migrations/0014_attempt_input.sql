-- The step's input as each attempt was sent it (its mapping resolved): NULL before it was
-- resolved, for one over the kept bounds (saga.max_result_bytes, the JSON depth an event
-- allows), and for attempts recorded before inputs were kept.
ALTER TABLE step_attempts ADD COLUMN sent_input JSON NULL;
