"""Every cache route, for one `include_router` in the app."""

from fastapi import APIRouter

from kk.cache import crud_routes, demo_routes

router = APIRouter()
router.include_router(demo_routes.router)
router.include_router(crud_routes.router)
