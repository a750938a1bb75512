-- A refresh token rotated because an earlier token of its session was exchanged once more
-- (a reload cut that exchange's answer short), not because it was presented. Such a token
-- was never used: a later re-exchange of the earlier token within its window is still a
-- reload, not reuse. Adding a column with a constant default rewrites no row.
ALTER TABLE refresh_tokens ADD COLUMN superseded boolean NOT NULL DEFAULT false;
