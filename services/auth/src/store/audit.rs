//! The trail of admin actions.

use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_runtime::Result;

/// Records that `admin_id` did `action` to `user_id`.
#[tracing::instrument(name = "db.record", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn record(
    conn: &mut PgConnection,
    admin_id: Uuid,
    user_id: Uuid,
    action: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO admin_audit (admin_id, user_id, action, detail) VALUES ($1, $2, $3, $4)",
        admin_id,
        user_id,
        action,
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}
