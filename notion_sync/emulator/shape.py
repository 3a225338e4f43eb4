"""The knobs of the generated workspace."""

from pydantic import BaseModel, Field


class WorkspaceShape(BaseModel):
    """How the generated workspace looks; `pages` (given to `Workspace`) counts rows too."""

    model_config = {"extra": "forbid"}

    fan_out: int = Field(6, ge=1, description="average child pages per page")
    max_depth: int = Field(6, ge=1, description="deepest page level below the workspace root")
    top_level_pages: int = Field(8, ge=1)
    database_share: float = Field(0.4, ge=0.0, le=0.95, description="share of pages that are rows")
    rows_per_data_source: int = Field(40, ge=1)
    large_data_source_rows: int = Field(
        0,
        ge=0,
        description="rows of one extra data source, on top of `pages` (past 10,000: the query cap); 0 = off",
    )
    huge_page_blocks: int = Field(1200, ge=0, description="top-level blocks of the huge page; 0 = off")
    private_pages: int = Field(3, ge=0, description="pages not shared with the integration")
    users: int = Field(40, ge=30, description="people in the workspace (besides the bot)")
    file_expiry_seconds: int = Field(3600, ge=1)
    lru_pages: int = Field(256, ge=1, description="built block trees kept in memory")
    workspace_name: str = Field(
        "Emulated Workspace", description="`bot.workspace_name` of GET /v1/users/me (--workspace-name)"
    )
