from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Instrumetriq delivery"
admin.site.site_title = "Instrumetriq delivery"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("deliveries.urls")),
]
