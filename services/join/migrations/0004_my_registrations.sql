-- "My tickets": a user's registrations that hold a place or a waitlist entry.
CREATE INDEX registrations_by_user ON registrations (user_id)
    WHERE status IN ('confirmed', 'waitlisted', 'checked_in');
